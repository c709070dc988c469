import Foundation
import PulseboardDatabase
import PulseboardKernel

/// Where points, series and rollups are kept. The commit, the ingest hot path, is written per
/// engine because each is fastest its own way (prepared statements in SQLite, whole columns as
/// arrays in PostgreSQL); reads and retention are written once below, in SQL both engines run.
package protocol MetricsStore: Sendable {
    var database: any Database { get }
    /// Stores the batches in one transaction, in order, and returns one outcome per batch.
    func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome]
    /// The id of a series this store has committed to, without asking the database.
    func knownSeriesID(_ key: SeriesKey) -> Int64?
    /// The log of commits that other instances sharing the database read to publish them live;
    /// nil when no other instance can share it.
    var liveLog: (any LiveLog)? { get }
    /// Makes every committed point readable in chunks, rollups and the series' last values; the
    /// reads below call it first (SQLite folds its point log, PostgreSQL has nothing to do).
    func settle() async throws
}

/// Commits in the order an instance made them, for the other instances (`PointRelay`).
package protocol LiveLog: Sendable {
    /// Rings after every commit that logged points.
    var committed: AsyncStream<Void> { get }
    /// Another instance's logged commits after `seq` (oldest first), at most `limit`.
    func liveLog(instance: String, after seq: Int64, notBefore createdMs: Int64, limit: Int64) async throws -> [(seq: Int64, points: [MetricPoint])]
    /// The other instances that logged commits since `createdMs`, with their latest sequence.
    func liveInstances(since createdMs: Int64) async throws -> [(instance: String, seq: Int64)]
}

extension MetricsStore {
    func seriesID(_ key: SeriesKey) async throws -> Int64? {
        if let id = knownSeriesID(key) { return id }
        return try await database.selectValue(SQLStatement("SELECT id FROM series WHERE name = ? AND tags = ?", .text(key.name), .text(key.canonicalTags)))?
            .int
    }

    /// The series of this name whose tags include `tags` (a subset match), by their tags.
    func series(named name: String, including tags: [String: String]) async throws -> [(id: Int64, key: SeriesKey)] {
        try await database.select(SQLStatement("SELECT id, tags FROM series WHERE name = ? ORDER BY tags", .text(name))).compactMap { row in
            guard let id = row.first?.int, let text = row.last?.string else { throw UnexpectedRow(table: "series", row: row) }
            let key = SeriesKey(name: name, tags: SeriesKey.tags(fromCanonical: text))
            return tags.allSatisfy { key.tags[$0.key] == $0.value } ? (id, key) : nil
        }
    }

    func listSeries() async throws -> [SeriesSummary] {
        try await settle()
        let stored = try await storedSizes()
        return try await database.select(SQLStatement("SELECT id, name, tags, last_ts, last_value FROM series ORDER BY name, tags"), as: SeriesRow.self).map {
            row in
            SeriesSummary(
                series: SeriesKey(name: row.name, tags: SeriesKey.tags(fromCanonical: row.tags)), lastTimestampMs: row.lastTs, lastValue: row.lastValue,
                stored: stored[row.id] ?? StoredSize())
        }
    }

    /// What the chunks of each series hold and take, by series id.
    package func storedSizes() async throws -> [Int64: StoredSize] {
        try await settle()
        var sizes: [Int64: StoredSize] = [:]
        for row in try await database.select(
            SQLStatement("SELECT series_id, COUNT(*), CAST(SUM(count) AS BIGINT), CAST(SUM(LENGTH(data)) AS BIGINT) FROM chunks GROUP BY series_id"))
        {
            guard row.count == 4, let id = row[0].int, let chunks = row[1].int, let points = row[2].int, let bytes = row[3].int else {
                throw UnexpectedRow(table: "chunk sizes", row: row)
            }
            sizes[id] = StoredSize(points: points, bytes: bytes, chunks: chunks)
        }
        return sizes
    }

    /// Raw points in [from, to], oldest first (equal timestamps by value), at most `limit`. Only
    /// the chunks that overlap the range are decoded, and of those only as many as the limit needs.
    func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [Chunk.Point] {
        let chunks = try await chunks(seriesID: seriesID, fromMs: fromMs, toMs: toMs)
        var found: [Chunk.Point] = []
        for (index, chunk) in chunks.enumerated() {
            found += try Chunk.points(of: [chunk]).filter { fromMs <= $0.timestampMs && $0.timestampMs <= toMs }
            // Chunks come by their first timestamp: once the limit is reached before the next
            // chunk begins, no later chunk can add a point before the last one kept.
            let next = index + 1
            if found.count >= limit, next < chunks.endIndex {
                found.sort(by: Chunk.inOrder)
                if found[limit - 1].timestampMs < chunks[next].startTs { break }
            }
        }
        return Array(found.sorted(by: Chunk.inOrder).prefix(limit))
    }

    func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        let chunks = try await chunks(seriesID: seriesID, fromMs: fromMs, toMs: toMs)
        let (inside, edges) = (chunks.filter { $0.lies(within: fromMs, toMs) }, chunks.filter { !$0.lies(within: fromMs, toMs) })
        let atEdges = try Chunk.points(of: edges).count { fromMs <= $0.timestampMs && $0.timestampMs <= toMs }
        return inside.reduce(0) { $0 + $1.count } + Int64(atEdges)
    }

    /// Sum of the rollup counts of the buckets that start in [from, to).
    func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await settle()
        return try await database.selectCount(
            SQLStatement(
                "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM \(rollup.table) WHERE series_id = ? AND bucket >= ? AND bucket < ?",
                .integer(seriesID), .integer(fromMs), .integer(toMs)))
    }

    /// Buckets of `widthMs` aligned to the epoch, over [from, to), from a rollup whose width
    /// divides `widthMs`, or from the raw points when `source` is nil. Timestamps are never
    /// negative, so integer division floors alike in both engines.
    func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket] {
        guard let source else { return try await rawBuckets(seriesID: seriesID, fromMs: fromMs, toMs: toMs, widthMs: widthMs) }
        try await settle()
        let width = SQLValue.integer(widthMs)
        return try await database.select(
            SQLStatement(
                """
                SELECT (bucket / ?) * ? AS bucket_start, CAST(SUM(count) AS BIGINT) AS count, SUM(sum) AS sum, MIN(min) AS min, MAX(max) AS max
                FROM \(source.table) WHERE series_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket_start ORDER BY bucket_start
                """, width, width, .integer(seriesID), .integer(fromMs), .integer(toMs)),
            as: Bucket.self)
    }

    private func rawBuckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64) async throws -> [Bucket] {
        var buckets: [Int64: Bucket] = [:]
        for point in try await Chunk.points(of: chunks(seriesID: seriesID, fromMs: fromMs, toMs: toMs - 1))
        where fromMs <= point.timestampMs && point.timestampMs < toMs {
            let start = point.timestampMs - point.timestampMs % widthMs
            buckets[start, default: Bucket.empty(startingAt: start)].add(point.value)
        }
        return buckets.values.sorted { $0.startMs < $1.startMs }
    }

    /// The ids of the series with chunks that overlap [from, to].
    func seriesWithPoints(fromMs: Int64, toMs: Int64) async throws -> Set<Int64> {
        try await settle()
        return Set(
            try await database.select(
                SQLStatement("SELECT DISTINCT series_id FROM chunks WHERE end_ts >= ? AND start_ts <= ?", .integer(fromMs), .integer(toMs))
            )
            .compactMap { $0.first?.int })
    }

    /// The chunks of a series that overlap [from, to], by first timestamp, with their bytes.
    func chunks(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> [StoredChunk] {
        try await chunks(seriesIDs: [seriesID], fromMs: fromMs, toMs: toMs)[seriesID] ?? []
    }

    /// The chunks of several series that overlap [from, to], by series, each by first timestamp:
    /// one statement for them all.
    func chunks(seriesIDs: [Int64], fromMs: Int64, toMs: Int64) async throws -> [Int64: [StoredChunk]] {
        try await settle()
        let found = try await database.select(
            SQLStatement(
                """
                SELECT series_id, id, start_ts, end_ts, count, data FROM chunks
                WHERE series_id IN (\(Chunk.placeholders(seriesIDs.count))) AND end_ts >= ? AND start_ts <= ? ORDER BY series_id, start_ts, id
                """, arguments: seriesIDs.map { .integer($0) } + [.integer(fromMs), .integer(toMs)]),
            as: StoredChunk.self)
        return Dictionary(grouping: found, by: \.seriesId)
    }

    /// Retention: chunks whose last point is before `pointsBefore` (so a chunk that straddles
    /// the cutoff stays, at most an hour longer), rollups before it (a bucket goes when it starts
    /// before the cutoff's bucket), idempotency keys before `idempotencyKeysBefore`, and the live
    /// log after ten minutes (other instances read it within seconds).
    package func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws {
        let cutoff = pointsBefore.millisecondsSince1970
        try await database.transaction(
            [SQLStatement("DELETE FROM chunks WHERE end_ts < ?", .integer(cutoff))]
                + Rollup.allCases.map { SQLStatement("DELETE FROM \($0.table) WHERE bucket < ?", .integer(cutoff - cutoff % $0.widthMs)) }
                + [
                    SQLStatement("DELETE FROM idempotency_keys WHERE created_at < ?", .integer(idempotencyKeysBefore.millisecondsSince1970)),
                    SQLStatement("DELETE FROM live_log WHERE created_at < ?", .integer(now.millisecondsSince1970 - 600_000)),
                ])
    }
}

/// A row of `listSeries()`, decoded by column name.
private struct SeriesRow: Decodable {
    var id: Int64
    var name: String
    var tags: String
    var lastTs: Int64?
    var lastValue: Double?
}
