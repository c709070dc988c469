import Foundation

/// The samples of one stored series, sorted by time, one per timestamp.
public struct StoredSeries: Sendable {
    public var labels: Labels
    public var timestamps: [Int64]
    public var values: [Double]

    public init(labels: Labels, timestamps: [Int64], values: [Double]) {
        self.labels = labels
        self.timestamps = timestamps
        self.values = values
    }
}

/// Which samples of a series a query needs: those in `windows` (ascending by start), or with
/// `lastOnly` just the latest sample of each window (what an instant vector selector reads at
/// each step), so that a store can skip the rest.
public struct SampleRequest: Hashable, Sendable {
    public var windows: [ClosedRange<Int64>]
    public var lastOnly: Bool

    public init(windows: [ClosedRange<Int64>], lastOnly: Bool) {
        self.windows = windows
        self.lastOnly = lastOnly
    }

    /// From the first window's start to the last one's end.
    public var span: ClosedRange<Int64> { windows.first!.lowerBound...windows.map(\.upperBound).max()! }

    /// The samples of `timestamps` (sorted) that the request needs, by index.
    public func needed(_ timestamps: [Int64]) -> [Int] {
        var kept: [Int] = []
        if lastOnly {
            for window in windows {
                // The last sample at or before the window's end, if it is inside the window.
                var (low, high) = (0, timestamps.count)
                while low < high {
                    let middle = (low + high) / 2
                    if timestamps[middle] <= window.upperBound { low = middle + 1 } else { high = middle }
                }
                if low > 0, timestamps[low - 1] >= window.lowerBound, kept.last != low - 1 { kept.append(low - 1) }
            }
        } else {
            var window = 0
            for (index, timestamp) in timestamps.enumerated() {
                while window < windows.count, windows[window].upperBound < timestamp { window += 1 }
                guard window < windows.count else { break }
                if windows[window].contains(timestamp) { kept.append(index) }
            }
        }
        return kept
    }
}

/// Where a query's samples come from.
public protocol SeriesStore: Sendable {
    /// The series whose labels satisfy every matcher, each with the samples the request needs
    /// (sorted, one per timestamp; a series without any is left out). Throws
    /// `PromQLError.execution` when that would be more than `sampleLimit` samples.
    func series(matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int) async throws -> [StoredSeries]
}

/// What a query answers, in the four shapes of Prometheus's API.
public enum QueryResult: Sendable {
    case scalar(timestampMs: Int64, value: Double)
    case string(timestampMs: Int64, value: String)
    case vector([(labels: Labels, timestampMs: Int64, value: Double)])
    case matrix([(labels: Labels, samples: [(timestampMs: Int64, value: Double)])])
}

/// Evaluates PromQL as Prometheus 2.42 does: an instant query at one time, a range query at every
/// step from start to end. An instant vector selector takes each series' latest sample in
/// `[t - lookback, t]` (5 minutes, Prometheus's staleness rule, since Pulseboard stores no stale
/// markers); a range selector `x[r]` the samples in `[t - r, t]`; both shifted by `offset`.
/// The samples are read first (each selector's whole span at once), then the expression is
/// evaluated in memory; a query that would read more than `sampleLimit` samples is refused.
/// Only the samples the steps use are read (`SampleRequest`), so a selector over a week at a
/// ten-minute step reads a sample a step, not every sample of the week.
public struct QueryEngine: Sendable {
    public var lookbackMs: Int64 = 300_000
    public var sampleLimit = 20_000_000
    /// Steps of a range query at most, as Prometheus limits them.
    public static let maxSteps: Int64 = 11_000

    public init() {}

    public func instant(_ query: String, atMs time: Int64, store: some SeriesStore) async throws -> QueryResult {
        let expression = try Parser.parse(query)
        let steps = Steps(startMs: time, stepMs: 1, count: 1)
        let data = try await load(expression, steps: steps, store: store)
        if case .matrixSelector(let selector, let range) = expression {
            let request = Self.request(selector, rangeMs: range, steps: steps, lookbackMs: lookbackMs)
            return .matrix(
                (data[SelectorKey(selector.matchers, request)] ?? []).map { stored in
                    (stored.labels, zip(stored.timestamps, stored.values).map { (timestampMs: $0.0, value: $0.1) })
                })
        }
        let value = try Evaluator(steps: steps, data: data, lookbackMs: lookbackMs).evaluate(expression)
        switch value {
        case .scalar(let values): return .scalar(timestampMs: time, value: values[0])
        case .string(let text): return .string(timestampMs: time, value: text)
        case .vector(let vector): return .vector(vector.series.compactMap { series in series.values[0].map { (series.labels, time, $0) } })
        }
    }

    public func range(_ query: String, startMs: Int64, endMs: Int64, stepMs: Int64, store: some SeriesStore) async throws -> QueryResult {
        let expression = try Parser.parse(query)
        guard [.scalar, .vector].contains(expression.type) else {
            throw PromQLError.badData("invalid expression type \"\(expression.type.documented)\" for range query, must be Scalar or instant Vector")
        }
        let steps = Steps(startMs: startMs, stepMs: stepMs, count: Int((endMs - startMs) / stepMs) + 1)
        let value = try Evaluator(steps: steps, data: try await load(expression, steps: steps, store: store), lookbackMs: lookbackMs).evaluate(expression)
        func samples(_ values: [Double?]) -> [(timestampMs: Int64, value: Double)] {
            values.enumerated().compactMap { index, value in value.map { (steps.time(index), $0) } }
        }
        switch value {
        case .scalar(let values): return .matrix([(Labels.empty, samples(values))])
        case .string: throw PromQLError.badData("invalid expression type \"string\" for range query, must be Scalar or instant Vector")
        case .vector(let vector):
            return .matrix(vector.series.map { ($0.labels, samples($0.values)) }.filter { !$0.1.isEmpty }.sorted { $0.0 < $1.0 })
        }
    }

    /// Reads every selector's samples, as much as the steps need.
    private func load(_ expression: Expression, steps: Steps, store: some SeriesStore) async throws -> [SelectorKey: [StoredSeries]] {
        var data: [SelectorKey: [StoredSeries]] = [:]
        var loaded = 0
        for (selector, range) in Self.selectors(in: expression) {
            let key = SelectorKey(selector.matchers, Self.request(selector, rangeMs: range, steps: steps, lookbackMs: lookbackMs))
            guard data[key] == nil else { continue }
            let series = try await store.series(matching: selector.matchers, request: key.request, sampleLimit: sampleLimit - loaded)
            loaded += series.reduce(0) { $0 + $1.timestamps.count }
            guard loaded <= sampleLimit else { throw PromQLError.execution(Self.tooManySamples) }
            data[key] = series
        }
        return data
    }

    public static let tooManySamples = "query processing would load too many samples into memory in query execution"

    /// What a selector reads at every step: a range selector (`rangeMs`) every sample of
    /// `[t - range, t]`, an instant one the latest sample of `[t - lookback, t]`; t shifted by
    /// the offset. Overlapping windows of a range selector are read as one.
    static func request(_ selector: VectorSelector, rangeMs: Int64?, steps: Steps, lookbackMs: Int64) -> SampleRequest {
        let windows = (0..<steps.count).map { step in
            let end = steps.time(step) - selector.offsetMs
            return (end - (rangeMs ?? lookbackMs))...end
        }
        guard rangeMs != nil else { return SampleRequest(windows: windows, lastOnly: true) }
        var merged: [ClosedRange<Int64>] = []
        for window in windows {
            if let last = merged.last, window.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, window.upperBound)
            } else {
                merged.append(window)
            }
        }
        return SampleRequest(windows: merged, lastOnly: false)
    }

    /// The selectors of an expression, with the range of those that are range selectors.
    static func selectors(in expression: Expression) -> [(VectorSelector, Int64?)] {
        switch expression {
        case .number, .string: []
        case .vectorSelector(let selector): [(selector, nil)]
        case .matrixSelector(let selector, let range): [(selector, range)]
        case .call(_, let arguments): arguments.flatMap { selectors(in: $0) }
        case .aggregate(let aggregation): (aggregation.parameter.map { selectors(in: $0) } ?? []) + selectors(in: aggregation.expression)
        case .binary(let operation): selectors(in: operation.lhs) + selectors(in: operation.rhs)
        case .negate(let inner): selectors(in: inner)
        }
    }
}

/// The times a query is evaluated at.
struct Steps {
    var startMs: Int64
    var stepMs: Int64
    var count: Int

    func time(_ index: Int) -> Int64 { startMs + Int64(index) * stepMs }
    var endMs: Int64 { time(count - 1) }
}

/// A selector's samples as loaded: by its matchers and what was read.
struct SelectorKey: Hashable {
    var matchers: [LabelMatcher]
    var request: SampleRequest

    init(_ matchers: [LabelMatcher], _ request: SampleRequest) {
        self.matchers = matchers
        self.request = request
    }
}

/// An instant vector at every step: per series, its value at each step or nil.
struct StepVector {
    struct Series {
        var labels: Labels
        var values: [Double?]
    }

    var series: [Series] = []
}

/// A value during evaluation, over all steps.
enum StepValue {
    case scalar([Double])
    case vector(StepVector)
    case string(String)
}
