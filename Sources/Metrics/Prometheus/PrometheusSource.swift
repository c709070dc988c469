import Foundation
import PulseboardDatabase
import PulseboardKernel
import PulseboardPromQL
import Synchronization

/// A source of series for the Prometheus API: the stored metrics here, class-level learning
/// series in the classroom. Each answers only what the caller may see.
package protocol PrometheusSource: Sendable {
    /// Hands `body` each series whose labels match, one at a time, with the samples the request
    /// needs (sorted, one per timestamp); `PromQLError.execution` when one series holds more
    /// than `sampleLimit`.
    func forEachSeries(
        matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int, caller: UserClaims, _ body: (StoredSeries) throws -> Void
    ) async throws
    /// The labels of the series that match and have samples in [from, to].
    func labelSets(matching matchers: [LabelMatcher], fromMs: Int64, toMs: Int64, caller: UserClaims) async throws -> [Labels]
}

/// The stored metrics, for admins and instructors (students do not see operational metrics, as
/// on the live channels). Series are found by their labels as `PrometheusNames` maps them; the
/// catalogue of series keeps each one's decoded tags, since a series never changes once made.
package final class StoredMetricsSource: PrometheusSource {
    let store: any MetricsStore
    private let decoded = Mutex<[Int64: SeriesKey]>([:])

    package init(store: any MetricsStore) {
        self.store = store
    }

    package func forEachSeries(
        matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int, caller: UserClaims, _ body: (StoredSeries) throws -> Void
    ) async throws {
        let matching = try await matchingSeries(matchers, caller: caller)
        let span = request.span
        // The chunks of a few series a statement: a statement per series costs a thread hop
        // each, one for all would hold a week of every series' bytes at once. They are decoded
        // a series per core at a time, and handed on in order.
        let cores = ProcessInfo.processInfo.activeProcessorCount
        for group in Self.slices(of: matching, size: 16) {
            let chunks = try await store.chunks(seriesIDs: group.map(\.id), fromMs: span.lowerBound, toMs: span.upperBound)
            for part in Self.slices(of: group, size: cores) {
                let decoded = try await withThrowingTaskGroup(of: (Int, StoredSeries).self) { tasks in
                    for (offset, series) in part.enumerated() {
                        let own = chunks[series.id] ?? []
                        tasks.addTask {
                            let (timestamps, values) = try Self.samples(of: own, request: request)
                            return (offset, StoredSeries(labels: series.labels, timestamps: timestamps, values: values))
                        }
                    }
                    var decoded: [StoredSeries?] = Array(repeating: nil, count: part.count)
                    for try await (offset, series) in tasks { decoded[offset] = series }
                    return decoded.compactMap { $0 }
                }
                for series in decoded where !series.timestamps.isEmpty {
                    guard series.timestamps.count <= sampleLimit else { throw PromQLError.execution(QueryEngine.tooManySamples) }
                    try body(series)
                }
            }
        }
    }

    private static func slices<Element>(of elements: some RandomAccessCollection<Element>, size: Int) -> [ArraySlice<Element>] {
        let all = Array(elements)
        return stride(from: 0, to: all.count, by: size).map { all[$0..<min($0 + size, all.count)] }
    }

    package func labelSets(matching matchers: [LabelMatcher], fromMs: Int64, toMs: Int64, caller: UserClaims) async throws -> [Labels] {
        let withData = try await store.seriesWithPoints(fromMs: fromMs, toMs: toMs)
        return try await matchingSeries(matchers, caller: caller).filter { withData.contains($0.id) }.map(\.labels)
    }

    /// The series whose labels match, by id.
    private func matchingSeries(_ matchers: [LabelMatcher], caller: UserClaims) async throws -> [(id: Int64, labels: Labels)] {
        guard caller.role != .student else { return [] }
        let rows = try await store.database.select(SQLStatement("SELECT id, name, tags FROM series"))
        var keys: [(id: Int64, key: SeriesKey)] = []
        let known = decoded.withLock { $0 }
        var new: [Int64: SeriesKey] = [:]
        for row in rows {
            guard row.count == 3, let id = row[0].int, let name = row[1].string, let tags = row[2].string else {
                throw UnexpectedRow(table: "series", row: row)
            }
            let key = known[id] ?? SeriesKey(name: name, tags: SeriesKey.tags(fromCanonical: tags))
            if known[id] == nil { new[id] = key }
            keys.append((id, key))
        }
        if !new.isEmpty { decoded.withLock { $0.merge(new) { old, _ in old } } }
        return PrometheusNames.labels(of: keys).filter { _, labels in matchers.allSatisfy { $0.matches(labels) } }.sorted { $0.key < $1.key }
            .map { ($0.key, $0.value) }
    }
}

/// One request's view of the sources, as the query engine reads it.
struct CallerSeriesStore: SeriesStore {
    let sources: [any PrometheusSource]
    let caller: UserClaims

    func forEachSeries(
        matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int, _ body: (StoredSeries) throws -> Void
    ) async throws {
        for source in sources {
            try await source.forEachSeries(matching: matchers, request: request, sampleLimit: sampleLimit, caller: caller, body)
        }
    }
}

extension StoredMetricsSource {
    /// The samples of a series that a query needs, one per timestamp (of several points of one
    /// timestamp the greatest value, the last in `Chunk.inOrder`, stands), from its chunks over
    /// the request's span. Of each chunk only the points the request needs are kept. Chunks that
    /// follow one another in time, each in order (what compaction leaves), are simply joined;
    /// others (overlapping, or with late points) are merged by sorting.
    static func samples(of chunks: [StoredChunk], request: SampleRequest) throws -> (timestamps: [Int64], values: [Double]) {
        var timestamps: [Int64] = []
        var values: [Double] = []
        var joined = true
        for chunk in chunks {
            let points = try ChunkCodec.decodeColumns(chunk.data)
            let inOrder = zip(points.timestamps, points.timestamps.dropFirst()).allSatisfy { $0 < $1 }
            // Out of order, a chunk's needed points cannot be told apart yet: all are kept until sorted.
            let kept = inOrder ? request.kept(timestamps: points.timestamps, values: points.values) : points
            if let first = kept.timestamps.first, let last = timestamps.last, first <= last { joined = false }
            joined = joined && inOrder
            timestamps += kept.timestamps
            values += kept.values
        }
        if !joined {
            (timestamps, values) = Self.merged(timestamps, values)
        }
        // Each chunk kept what it needs; together some of it may not be (an earlier sample of
        // a step that a later chunk also has).
        return request.kept(timestamps: timestamps, values: values)
    }

    /// Sorted by `Chunk.inOrder`, one sample per timestamp (the last of equal ones).
    private static func merged(_ timestamps: [Int64], _ values: [Double]) -> (timestamps: [Int64], values: [Double]) {
        var merged: (timestamps: [Int64], values: [Double]) = ([], [])
        for point in zip(timestamps, values).map({ (timestampMs: $0, value: $1) }).sorted(by: Chunk.inOrder) {
            if merged.timestamps.last == point.timestampMs {
                merged.values[merged.values.count - 1] = point.value
            } else {
                merged.timestamps.append(point.timestampMs)
                merged.values.append(point.value)
            }
        }
        return merged
    }
}
