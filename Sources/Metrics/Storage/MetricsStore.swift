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
        return try await database.select(SQLStatement("SELECT id FROM series WHERE name = ? AND tags = ?", .text(key.name), .text(key.canonicalTags)))
            .first?.first?.int
    }

    func listSeries() async throws -> [SeriesSummary] {
        try await database.select(SQLStatement("SELECT name, tags, last_ts, last_value FROM series ORDER BY name, tags")).map { row in
            guard row.count == 4, let name = row[0].string, let tags = row[1].string else { throw UnexpectedRow(table: "series", row: row) }
            return SeriesSummary(
                series: SeriesKey(name: name, tags: SeriesKey.tags(fromCanonical: tags)), lastTimestampMs: row[2].int, lastValue: row[3].double)
        }
    }

    /// Raw points in [from, to], oldest first, at most `limit`.
    func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)] {
        try await database.select(
            SQLStatement(
                "SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
                .integer(seriesID), .integer(fromMs), .integer(toMs), .integer(Int64(limit)))
        ).map { row in
            guard row.count == 2, let ts = row[0].int, let value = row[1].double else { throw UnexpectedRow(table: "points", row: row) }
            return (ts, value)
        }
    }

    func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await count(
            SQLStatement(
                "SELECT COUNT(*) FROM points WHERE series_id = ? AND ts >= ? AND ts <= ?", .integer(seriesID), .integer(fromMs), .integer(toMs)))
    }

    /// Sum of the rollup counts of the buckets that start in [from, to).
    func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await count(
            SQLStatement(
                "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM \(rollup.table) WHERE series_id = ? AND bucket >= ? AND bucket < ?",
                .integer(seriesID), .integer(fromMs), .integer(toMs)))
    }

    /// Buckets of `widthMs` aligned to the epoch, over [from, to), from the raw points or a rollup
    /// whose width divides `widthMs`. Timestamps are never negative, so integer division floors
    /// alike in both engines.
    func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket] {
        let sql =
            if let source {
                """
                SELECT (bucket / ?) * ? AS b, CAST(SUM(count) AS BIGINT), SUM(sum), MIN(min), MAX(max) FROM \(source.table)
                WHERE series_id = ? AND bucket >= ? AND bucket < ? GROUP BY b ORDER BY b
                """
            } else {
                """
                SELECT (ts / ?) * ? AS b, COUNT(*), SUM(value), MIN(value), MAX(value) FROM points
                WHERE series_id = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b
                """
            }
        let width = SQLValue.integer(widthMs)
        return try await database.select(SQLStatement(sql, width, width, .integer(seriesID), .integer(fromMs), .integer(toMs))).map { row in
            guard row.count == 5, let start = row[0].int, let count = row[1].int, let sum = row[2].double, let min = row[3].double,
                let max = row[4].double
            else { throw UnexpectedRow(table: source?.table ?? "points", row: row) }
            return Bucket(startMs: start, count: count, sum: sum, min: min, max: max)
        }
    }

    /// Retention: points and rollups before `pointsBefore` (a rollup bucket goes when it starts
    /// before the cutoff's bucket), idempotency keys before `idempotencyKeysBefore`, and the live
    /// log after ten minutes (other instances read it within seconds).
    package func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws {
        let cutoff = pointsBefore.millisecondsSince1970
        try await database.transaction(
            [SQLStatement("DELETE FROM points WHERE ts < ?", .integer(cutoff))]
                + Rollup.allCases.map { SQLStatement("DELETE FROM \($0.table) WHERE bucket < ?", .integer(cutoff - cutoff % $0.widthMs)) }
                + [
                    SQLStatement("DELETE FROM idempotency_keys WHERE created_at < ?", .integer(idempotencyKeysBefore.millisecondsSince1970)),
                    SQLStatement("DELETE FROM live_log WHERE created_at < ?", .integer(now.millisecondsSince1970 - 600_000)),
                ])
    }

    private func count(_ statement: SQLStatement) async throws -> Int64 {
        guard let count = try await database.select(statement).first?.first?.int else { throw UnexpectedRow(table: "count", row: []) }
        return count
    }
}
