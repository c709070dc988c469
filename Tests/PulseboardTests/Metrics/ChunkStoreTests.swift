import Foundation
import Testing

@testable import PulseboardDatabase
@testable import PulseboardKernel
@testable import PulseboardMetrics
@testable import PulseboardSQLite

/// The chunk store against a plain computation over the same points: every history answer,
/// raw and downsampled, before and after compaction, on both engines.
@Suite("Chunk store", .throwawayPostgres) struct ChunkStoreTests {
    typealias Point = Chunk.Point
    static let series = SeriesKey(name: "sensor.temp", tags: ["room": "lab"])
    static let start: Int64 = 1_800_000_000_000

    /// Six hours of points committed in batches of random size, in random order across batches
    /// (so chunks overlap and windows get late points), with repeated timestamps, decimal and
    /// full-precision values.
    static func randomCommits(_ generator: inout some RandomNumberGenerator) -> [[Point]] {
        var points: [Point] = (0..<3_000).map { _ in
            let ts = start + Int64.random(in: 0..<6 * 3_600_000, using: &generator) / 1000 * 1000
            let value =
                Bool.random(using: &generator) ? Double(Int.random(in: -5_000...5_000, using: &generator)) / 100 : Double.random(in: -1...1, using: &generator)
            return (ts, value)
        }
        points += points.prefix(200).map { ($0.timestampMs, $0.value + 1) }  // same timestamps, other values
        points.sort { $0.timestampMs < $1.timestampMs }
        // Mostly in time order, like an agent, but every batch may also carry late points.
        var commits: [[Point]] = []
        var rest = points[...]
        while !rest.isEmpty {
            let size = Int.random(in: 1...60, using: &generator)
            commits.append(Array(rest.prefix(size)))
            rest = rest.dropFirst(size)
        }
        for _ in 0..<300 {
            let (a, b) = (Int.random(in: commits.indices, using: &generator), Int.random(in: commits.indices, using: &generator))
            if let late = commits[a].popLast() { commits[b].append(late) }
        }
        return commits
    }

    /// What a history query must answer, computed from the points alone.
    static func plainAnswer(_ points: [Point], fromMs: Int64, toMs: Int64, maxPoints: Int, forceBuckets: Bool) -> HistoryQuery.Answer {
        let inRange = points.filter { fromMs <= $0.timestampMs && $0.timestampMs <= toMs }.sorted(by: Chunk.inOrder)
        if !forceBuckets, inRange.count <= maxPoints { return .points(inRange) }
        let width = HistoryQuery.bucketWidth(fromMs: fromMs, toMs: toMs, maxBuckets: maxPoints)
        let (bucketsFrom, bucketsTo) = (HistoryQuery.floor(fromMs, width), HistoryQuery.floor(toMs, width) + width)
        var buckets: [Int64: Bucket] = [:]
        for point in points where bucketsFrom <= point.timestampMs && point.timestampMs < bucketsTo {
            let start = HistoryQuery.floor(point.timestampMs, width)
            buckets[start, default: .empty(startingAt: start)].add(point.value)
        }
        return .buckets(widthMs: width, buckets.values.sorted { $0.startMs < $1.startMs })
    }

    /// Equal, but sums only to rounding: they are added in another order.
    static func same(_ found: HistoryQuery.Answer, _ expected: HistoryQuery.Answer) -> Bool {
        switch (found, expected) {
        case (.points, .points): found == expected
        case (.buckets(let w1, let a), .buckets(let w2, let b)):
            w1 == w2 && a.count == b.count
                && zip(a, b).allSatisfy {
                    $0.startMs == $1.startMs && $0.count == $1.count && $0.min == $1.min && $0.max == $1.max
                        && abs($0.sum - $1.sum) <= 1e-9 * max(1, abs($1.sum))
                }
        default: false
        }
    }

    @Test(arguments: TestEngine.all)
    func everyHistoryAnswerMatchesAPlainComputationBeforeAndAfterCompaction(engine: TestEngine) async throws {
        try await StorageContractTests.withDatabase(engine) { database, metrics in
            var generator = SystemRandomNumberGenerator()
            let commits = Self.randomCommits(&generator)
            for commit in commits {
                let batch = IngestBatch(points: commit.map { MetricPoint(series: Self.series, timestampMs: $0.timestampMs, value: $0.value) })
                _ = try await metrics.commit([batch], now: Date())
                try await metrics.settle()
            }
            let points = commits.flatMap { $0 }
            let query = HistoryQuery(store: metrics)
            let ranges: [(Int64, Int64)] =
                [(Self.start - 1000, Self.start + 7 * 3_600_000), (Self.start + 3_600_000, Self.start + 2 * 3_600_000 - 1)]
                + (0..<8).map { _ in
                    let from = Self.start + Int64.random(in: -60_000..<6 * 3_600_000, using: &generator)
                    return (from, from + Int64.random(in: 0..<3 * 3_600_000, using: &generator))
                }
            let id = try #require(try await metrics.seriesID(Self.series))
            func check(_ stage: String) async throws {
                for (from, to) in ranges {
                    // The store's own reads, which the answers build on: exact counts, and the
                    // first points of a range when the limit cuts it short.
                    let inRange = points.filter { from <= $0.timestampMs && $0.timestampMs <= to }.sorted(by: Chunk.inOrder)
                    #expect(try await metrics.countPoints(seriesID: id, fromMs: from, toMs: to) == Int64(inRange.count), "\(stage): count \(from)...\(to)")
                    for limit in [7, 100] {
                        let first = try await metrics.points(seriesID: id, fromMs: from, toMs: to, limit: limit)
                        #expect(HistoryQuery.Answer.points(first) == .points(Array(inRange.prefix(limit))), "\(stage): first \(limit) points \(from)...\(to)")
                    }
                    for maxPoints in [10, 5_000] {
                        for force in [false, true] {
                            let found = try await query.run(seriesID: id, fromMs: from, toMs: to, maxPoints: maxPoints, forceBuckets: force)
                            let expected = Self.plainAnswer(points, fromMs: from, toMs: to, maxPoints: maxPoints, forceBuckets: force)
                            #expect(Self.same(found, expected), "\(stage): \(from)...\(to), \(maxPoints) points, buckets \(force)")
                        }
                    }
                }
            }
            try await check("as committed")
            let chunksBefore = try await database.selectCount(SQLStatement("SELECT COUNT(*) FROM chunks"))
            #expect(chunksBefore >= Int64(commits.count))
            // Compaction merges the closed chunks into at most one small chunk per hour.
            let merged = try await metrics.compactChunks(closedBefore: Date(millisecondsSince1970: Self.start + 7 * 3_600_000))
            let chunksAfter = try await database.selectCount(SQLStatement("SELECT COUNT(*) FROM chunks"))
            #expect(merged > 0 && chunksAfter < chunksBefore && chunksAfter <= 7)
            try await check("compacted")
            #expect(try await metrics.compactChunks(closedBefore: Date(millisecondsSince1970: Self.start + 7 * 3_600_000)) == 0)
        }
    }

    /// A limited read stops decoding only when no later chunk can hold an earlier point: here the
    /// first 64 chunks (one read's worth) end far after the chunks that follow them begin.
    @Test func aLimitedReadFindsTheFirstPointsAcrossOverlappingChunks() async throws {
        try await StorageContractTests.withDatabase(.sqlite) { _, metrics in
            let wide: [[Point]] = (0..<64).map { [(Self.start + Int64($0) * 500, 1.0), (Self.start + 80_000 + Int64($0), 2.0)] }
            let narrow: [[Point]] = (0..<100).map { [(Self.start + 32_000 + Int64($0) * 500, 3.0)] }
            for commit in wide + narrow {
                _ = try await metrics.commit(
                    [IngestBatch(points: commit.map { MetricPoint(series: Self.series, timestampMs: $0.timestampMs, value: $0.value) })], now: Date())
                try await metrics.settle()
            }
            let id = try #require(try await metrics.seriesID(Self.series))
            let expected = (wide + narrow).flatMap { $0 }.sorted(by: Chunk.inOrder).prefix(100)
            let found = try await metrics.points(seriesID: id, fromMs: 0, toMs: .max, limit: 100)
            #expect(HistoryQuery.Answer.points(found) == .points(Array(expected)))
        }
    }

    /// Instances compacting the same chunks at once (here passes on separate connections, which
    /// is all an instance adds): each window is merged by one of them, and no point is lost or
    /// stored twice.
    @Test(arguments: TestEngine.all)
    func concurrentCompactionsNeitherLoseNorRepeatAPoint(engine: TestEngine) async throws {
        try await StorageContractTests.withDatabase(engine) { database, metrics in
            // 60 commits of 30 points, a point every 6 s: three hours, twenty chunks per window.
            let points = (0..<1_800).map { (timestampMs: Self.start + Int64($0) * 6_000, value: Double($0 % 97)) }
            for commit in stride(from: 0, to: points.count, by: 30) {
                let batch = points[commit..<commit + 30].map { MetricPoint(series: Self.series, timestampMs: $0.timestampMs, value: $0.value) }
                _ = try await metrics.commit([IngestBatch(points: batch)], now: Date())
                try await metrics.settle()
            }
            let closed = Date(millisecondsSince1970: Self.start + 4 * 3_600_000)
            let merged = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 { group.addTask { try await metrics.compactChunks(closedBefore: closed) } }
                return try await group.reduce(0, +)
            }
            #expect(merged == 60)
            #expect(try await database.selectCount(SQLStatement("SELECT COUNT(*) FROM chunks")) == 3)
            let id = try #require(try await metrics.seriesID(Self.series))
            let stored = try await metrics.points(seriesID: id, fromMs: 0, toMs: .max, limit: 10_000)
            #expect(stored.map(\.timestampMs) == points.map(\.timestampMs) && stored.map(\.value) == points.map(\.value))
        }
    }

    /// A read while compaction replaces the chunks it reads sees every point once: it takes the
    /// list of chunks and their bytes in one statement. (Fetched by id after the list, the bytes
    /// of chunks merged meanwhile were missing, and a dashboard reloading history lost points.)
    @Test(arguments: TestEngine.all)
    func readsDuringCompactionSeeEveryPoint(engine: TestEngine) async throws {
        try await StorageContractTests.withDatabase(engine) { _, metrics in
            let points = (0..<1_800).map { (timestampMs: Self.start + Int64($0) * 6_000, value: Double($0 % 97)) }
            for round in 0..<4 {
                // Each round commits the points again as 60 small chunks a window, then reads
                // them again and again while a pass merges them.
                for commit in stride(from: 0, to: points.count, by: 30) {
                    let batch = points[commit..<commit + 30].map {
                        MetricPoint(series: Self.series, timestampMs: $0.timestampMs + Int64(round), value: $0.value)
                    }
                    _ = try await metrics.commit([IngestBatch(points: batch)], now: Date())
                    try await metrics.settle()
                }
                let id = try #require(try await metrics.seriesID(Self.series))
                let expected = (round + 1) * points.count
                async let merged = metrics.compactChunks(closedBefore: Date(millisecondsSince1970: Self.start + 4 * 3_600_000))
                for read in 0..<30 {
                    let found = try await metrics.points(seriesID: id, fromMs: 0, toMs: .max, limit: 10_000)
                    #expect(found.count == expected, "round \(round), read \(read)")
                }
                #expect(try await merged > 0)
            }
        }
    }

    /// SQLite's point log: commits under the fold's thresholds write a log row each and no chunk,
    /// and every read sees their points at once (it folds first); the commit that reaches the
    /// point threshold, or comes after the age threshold, folds the log; a store opened over the
    /// log of an earlier run (a crash) folds it before its first read. What is folded is exactly
    /// what was committed: points, rollups and last values.
    @Test func theSQLitePointLogIsReadableAtOnceAndFoldedByCountAgeAndRestart() async throws {
        try await StorageContractTests.withDatabase(.sqlite) { database, _ in
            let engine = try #require(database as? SQLiteEngine)
            let metrics = SQLiteMetricsStore(engine: engine, fold: .init(points: 100, age: .seconds(3_600)))
            try await metrics.settle()
            let series = [Self.series, SeriesKey(name: "sensor.humidity")]
            var committed: [Point] = []
            func commit(_ index: Int, to store: SQLiteMetricsStore) async throws {
                // Five points of each series, the second one's values a tenth of the first's.
                let points = (0..<5).map { (timestampMs: Self.start + Int64(index * 5 + $0) * 1_000, value: Double(index * 5 + $0)) }
                committed += points
                let batch = series.enumerated().flatMap { number, key in
                    points.map { MetricPoint(series: key, timestampMs: $0.timestampMs, value: $0.value / Double(1 + 9 * number)) }
                }
                _ = try await store.commit([IngestBatch(points: batch)], now: Date())
            }
            /// Rows in the point log and in the chunks table.
            func rows() async throws -> [Int64] {
                [
                    try await database.selectCount(SQLStatement("SELECT COUNT(*) FROM point_log")),
                    try await database.selectCount(SQLStatement("SELECT COUNT(*) FROM chunks")),
                ]
            }
            func expectStored(by store: SQLiteMetricsStore, _ stage: String) async throws {
                let id = try #require(try await store.seriesID(Self.series))
                let found = try await store.points(seriesID: id, fromMs: 0, toMs: .max, limit: 10_000)
                #expect(found.map(\.timestampMs) == committed.map(\.timestampMs) && found.map(\.value) == committed.map(\.value), "\(stage)")
                #expect(try await store.countRollup(.minute, seriesID: id, fromMs: 0, toMs: .max) == Int64(committed.count), "\(stage)")
                let last = try #require(try await store.listSeries().first { $0.series == series[1] })
                #expect(last.lastTimestampMs == committed.last?.timestampMs && last.lastValue == committed.last.map { $0.value / 10 }, "\(stage)")
                #expect(try await rows()[0] == 0, "\(stage)")
            }

            for index in 0..<9 { try await commit(index, to: metrics) }
            #expect(try await rows() == [9, 0])
            try await expectStored(by: metrics, "read of nine logged commits")
            #expect(try await rows() == [0, 2])

            for index in 9..<18 { try await commit(index, to: metrics) }
            #expect(try await rows()[0] == 9)
            try await commit(18, to: metrics)  // the hundredth point
            #expect(try await rows() == [0, 4])

            let young = SQLiteMetricsStore(engine: engine, fold: .init(points: 1_000, age: .milliseconds(200)))
            try await young.settle()
            for index in 19..<21 { try await commit(index, to: young) }
            #expect(try await rows()[0] == 2)
            try await Task.sleep(for: .milliseconds(250))
            try await commit(21, to: young)
            #expect(try await rows()[0] == 0)

            for index in 22..<25 { try await commit(index, to: metrics) }
            #expect(try await rows()[0] == 3)
            try await expectStored(by: SQLiteMetricsStore(engine: engine), "read after a restart")
        }
    }
}
