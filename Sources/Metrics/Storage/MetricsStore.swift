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
        return try await database.selectValue(SQLStatement("SELECT id FROM series WHERE name = ? AND tags = ?", .text(key.name), .text(key.canonicalTags)))?
            .int
    }

    func listSeries() async throws -> [SeriesSummary] {
        try await database.select(SQLStatement("SELECT name, tags, last_ts, last_value FROM series ORDER BY name, tags"), as: SeriesRow.self).map { row in
            SeriesSummary(
                series: SeriesKey(name: row.name, tags: SeriesKey.tags(fromCanonical: row.tags)), lastTimestampMs: row.lastTs, lastValue: row.lastValue)
        }
    }

    /// Raw points in [from, to], oldest first, at most `limit`.
    func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)] {
        try await database.select(
            SQLStatement(
                "SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
                .integer(seriesID), .integer(fromMs), .integer(toMs), .integer(Int64(limit))),
            as: PointRow.self
        ).map { ($0.ts, $0.value) }
    }

    func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await database.selectCount(
            SQLStatement(
                "SELECT COUNT(*) FROM points WHERE series_id = ? AND ts >= ? AND ts <= ?", .integer(seriesID), .integer(fromMs), .integer(toMs)))
    }

    /// Sum of the rollup counts of the buckets that start in [from, to).
    func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await database.selectCount(
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
                SELECT (bucket / ?) * ? AS bucket_start, CAST(SUM(count) AS BIGINT) AS count, SUM(sum) AS sum, MIN(min) AS min, MAX(max) AS max
                FROM \(source.table) WHERE series_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket_start ORDER BY bucket_start
                """
            } else {
                """
                SELECT (ts / ?) * ? AS bucket_start, COUNT(*) AS count, SUM(value) AS sum, MIN(value) AS min, MAX(value) AS max FROM points
                WHERE series_id = ? AND ts >= ? AND ts < ? GROUP BY bucket_start ORDER BY bucket_start
                """
            }
        let width = SQLValue.integer(widthMs)
        return try await database.select(SQLStatement(sql, width, width, .integer(seriesID), .integer(fromMs), .integer(toMs)), as: Bucket.self)
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
}

/// Rows of `listSeries()` and `points(...)`, decoded by column name.
private struct SeriesRow: Decodable {
    var name: String
    var tags: String
    var lastTs: Int64?
    var lastValue: Double?
}

private struct PointRow: Decodable {
    var ts: Int64
    var value: Double
}
