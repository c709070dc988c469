import Foundation

/// Answers history queries: raw points when the range holds at most `maxPoints` of them, otherwise
/// buckets of a "nice" width (1 s … 1 d, then whole days) with count, avg, min and max. Buckets
/// are aligned to the epoch and read from the coarsest rollup whose width divides theirs, so a
/// query over months reads thousands of rows. Counting is exact and cheap for the same reason.
package struct HistoryQuery {
    let store: any MetricsStore

    enum Answer: Equatable {
        case points([(timestampMs: Int64, value: Double)])
        case buckets(widthMs: Int64, [Bucket])

        static func == (lhs: Answer, rhs: Answer) -> Bool {
            switch (lhs, rhs) {
            case (.points(let a), .points(let b)): a.map(\.timestampMs) == b.map(\.timestampMs) && a.map(\.value) == b.map(\.value)
            case (.buckets(let wa, let a), .buckets(let wb, let b)): wa == wb && a == b
            default: false
            }
        }
    }

    static let niceWidthsMs: [Int64] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map { $0 * 1000 }
    static let dayMs: Int64 = 86_400_000

    /// How `aggregate=` combines the series of a group into one, per bucket.
    enum Aggregate: String {
        /// The mean of all their points.
        case avg
        /// The sum of each series' mean (the total of several hosts, say).
        case sum
        case min, max
    }

    /// One bucket of a combined answer.
    struct CombinedBucket: Equatable {
        var startMs: Int64
        var value: Double
        /// Points and series in the bucket.
        var count: Int64
        var series: Int
    }

    /// `from` and `to` are inclusive, in milliseconds.
    func run(seriesID id: Int64, fromMs: Int64, toMs: Int64, maxPoints: Int, forceBuckets: Bool) async throws -> Answer {
        if !forceBuckets {
            let count = try await countPoints(seriesID: id, fromMs: fromMs, toMs: toMs, levels: [.hour, .minute])
            if count <= maxPoints {
                return .points(try await store.points(seriesID: id, fromMs: fromMs, toMs: toMs, limit: maxPoints))
            }
        }
        let (width, buckets) = try await buckets(seriesID: id, fromMs: fromMs, toMs: toMs, maxBuckets: maxPoints)
        return .buckets(widthMs: width, buckets)
    }

    /// The series combined into one by `aggregate`, in buckets (at most `maxBuckets`) that each
    /// series reads from its rollups as `run` does.
    func combine(seriesIDs: [Int64], fromMs: Int64, toMs: Int64, maxBuckets: Int, aggregate: Aggregate) async throws -> (widthMs: Int64, [CombinedBucket]) {
        var merged: [Int64: (all: Bucket, meanSum: Double, series: Int)] = [:]
        let width = Self.bucketWidth(fromMs: fromMs, toMs: toMs, maxBuckets: maxBuckets)
        for id in seriesIDs {
            for bucket in try await buckets(seriesID: id, fromMs: fromMs, toMs: toMs, maxBuckets: maxBuckets).1 {
                var entry = merged[bucket.startMs] ?? (.empty(startingAt: bucket.startMs), 0, 0)
                entry.all.count += bucket.count
                entry.all.sum += bucket.sum
                entry.all.min = Swift.min(entry.all.min, bucket.min)
                entry.all.max = Swift.max(entry.all.max, bucket.max)
                entry.meanSum += bucket.average
                entry.series += 1
                merged[bucket.startMs] = entry
            }
        }
        let combined = merged.values.sorted { $0.all.startMs < $1.all.startMs }.map { entry in
            let value =
                switch aggregate {
                case .avg: entry.all.average
                case .sum: entry.meanSum
                case .min: entry.all.min
                case .max: entry.all.max
                }
            return CombinedBucket(startMs: entry.all.startMs, value: value, count: entry.all.count, series: entry.series)
        }
        return (width, combined)
    }

    private func buckets(seriesID id: Int64, fromMs: Int64, toMs: Int64, maxBuckets: Int) async throws -> (widthMs: Int64, [Bucket]) {
        let width = Self.bucketWidth(fromMs: fromMs, toMs: toMs, maxBuckets: maxBuckets)
        let start = Self.floor(fromMs, width)
        let end = Self.floor(toMs, width) + width
        let source = Rollup.allCases.reversed().first { width % $0.widthMs == 0 }
        return (width, try await store.buckets(seriesID: id, fromMs: start, toMs: end, widthMs: width, source: source))
    }

    /// The smallest nice width whose aligned buckets over the range number at most `maxBuckets`.
    static func bucketWidth(fromMs: Int64, toMs: Int64, maxBuckets: Int) -> Int64 {
        func fits(_ width: Int64) -> Bool {
            (floor(toMs, width) - floor(fromMs, width)) / width + 1 <= Int64(maxBuckets)
        }
        if let width = niceWidthsMs.first(where: fits) { return width }
        var days: Int64 = 2
        while !fits(days * dayMs) { days += 1 }
        return days * dayMs
    }

    /// Exact count of the points in [from, to]: whole buckets from the coarsest rollup, the ragged
    /// edges from the next finer level, down to the raw points.
    private func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64, levels: ArraySlice<Rollup>) async throws -> Int64 {
        guard fromMs <= toMs else { return 0 }
        guard let level = levels.first else {
            return try await store.countPoints(seriesID: seriesID, fromMs: fromMs, toMs: toMs)
        }
        let width = level.widthMs
        let wholeStart = Self.floor(fromMs + width - 1, width)
        let wholeEnd = Self.floor(toMs + 1, width)
        let finer = levels.dropFirst()
        guard wholeStart < wholeEnd else {
            return try await countPoints(seriesID: seriesID, fromMs: fromMs, toMs: toMs, levels: finer)
        }
        return try await store.countRollup(level, seriesID: seriesID, fromMs: wholeStart, toMs: wholeEnd)
            + countPoints(seriesID: seriesID, fromMs: fromMs, toMs: wholeStart - 1, levels: finer)
            + countPoints(seriesID: seriesID, fromMs: wholeEnd, toMs: toMs, levels: finer)
    }

    private func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64, levels: [Rollup]) async throws -> Int64 {
        try await countPoints(seriesID: seriesID, fromMs: fromMs, toMs: toMs, levels: levels[...])
    }

    static func floor(_ value: Int64, _ width: Int64) -> Int64 {
        value - ((value % width) + width) % width
    }
}
