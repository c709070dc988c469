import Foundation
import GRDB
import PulseboardDatabase
import PulseboardKernel
import PulseboardSQLite
import Synchronization

/// Points, series and rollups in SQLite, written with GRDB's cached statements: the writer's
/// group commit is one transaction of a few prepared statements run once per point.
package final class SQLiteMetricsStore: MetricsStore {
    let database: SQLiteEngine
    /// Series ids by key. Filled only after a commit succeeds, so it never holds an id that a
    /// rolled-back transaction handed out.
    private let seriesIDs = Mutex<[SeriesKey: Int64]>([:])

    /// One instance per database file: nobody reads a live log.
    package let liveLog: (any LiveLog)? = nil

    package init(database: SQLiteEngine) {
        self.database = database
    }

    package func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome] {
        let known = seriesIDs.withLock { $0 }
        let (outcomes, created) = try await database.pool.write { db -> ([CommitOutcome], [SeriesKey: Int64]) in
            var created: [SeriesKey: Int64] = [:]
            var aggregates = CommitAggregates()
            var outcomes: [CommitOutcome] = []
            let claimKey = try db.cachedStatement(
                sql: "INSERT INTO idempotency_keys (key, created_at, points) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"
            )
            let insertPoint = try db.cachedStatement(sql: "INSERT INTO points (series_id, ts, value) VALUES (?, ?, ?)")
            for batch in batches {
                if let key = batch.idempotencyKey {
                    try claimKey.execute(arguments: [key, now.millisecondsSince1970, batch.points.count])
                    if db.changesCount == 0 {
                        outcomes.append(.duplicate)
                        continue
                    }
                }
                for point in batch.points {
                    let id: Int64
                    if let existing = known[point.series] ?? created[point.series] {
                        id = existing
                    } else {
                        id = try Self.findOrCreateSeries(point.series, in: db)
                        created[point.series] = id
                    }
                    try insertPoint.execute(arguments: [id, point.timestampMs, point.value])
                    aggregates.add(seriesID: id, timestampMs: point.timestampMs, value: point.value)
                }
                let newRows =
                    try batch.rowsOnce.map { rowsOnce in
                        rowsOnce.newRows(returnedKeys: try rowsOnce.statements().flatMap { try SQLiteEngine.run($0, in: db) })
                    } ?? []
                outcomes.append(.stored(points: batch.points.count, newRows: newRows))
            }
            try Self.apply(aggregates, in: db)
            return (outcomes, created)
        }
        if !created.isEmpty {
            seriesIDs.withLock { $0.merge(created) { old, _ in old } }
        }
        return outcomes
    }

    private static func findOrCreateSeries(_ key: SeriesKey, in db: GRDB.Database) throws -> Int64 {
        let tags = key.canonicalTags
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM series WHERE name = ? AND tags = ?", arguments: [key.name, tags]) {
            return id
        }
        try db.execute(sql: "INSERT INTO series (name, tags) VALUES (?, ?)", arguments: [key.name, tags])
        return db.lastInsertedRowID
    }

    private static func apply(_ aggregates: CommitAggregates, in db: GRDB.Database) throws {
        let updateSeries = try db.cachedStatement(
            sql: """
                UPDATE series SET
                    last_value = CASE WHEN last_ts IS NULL OR last_ts <= ?1 THEN ?2 ELSE last_value END,
                    last_ts = MAX(COALESCE(last_ts, ?1), ?1)
                WHERE id = ?3
                """
        )
        for (id, delta) in aggregates.series {
            try updateSeries.execute(arguments: [delta.lastTimestampMs, delta.lastValue, id])
        }
        for (rollup, buckets) in aggregates.rollups {
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO \(rollup.table) (series_id, bucket, count, sum, min, max) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (series_id, bucket) DO UPDATE SET
                        count = \(rollup.table).count + excluded.count,
                        sum = \(rollup.table).sum + excluded.sum,
                        min = MIN(\(rollup.table).min, excluded.min),
                        max = MAX(\(rollup.table).max, excluded.max)
                    """
            )
            for (key, bucket) in buckets {
                try upsert.execute(arguments: [key.seriesID, key.startMs, bucket.count, bucket.sum, bucket.min, bucket.max])
            }
        }
    }

    package func seriesID(_ key: SeriesKey) async throws -> Int64? {
        if let id = seriesIDs.withLock({ $0[key] }) { return id }
        return try await database.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT id FROM series WHERE name = ? AND tags = ?", arguments: [key.name, key.canonicalTags])
        }
    }

    package func listSeries() async throws -> [SeriesSummary] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, tags, last_ts, last_value FROM series ORDER BY name, tags").map { row in
                SeriesSummary(
                    series: SeriesKey(name: row["name"], tags: SeriesKey.tags(fromCanonical: row["tags"])),
                    lastTimestampMs: row["last_ts"],
                    lastValue: row["last_value"]
                )
            }
        }
    }

    package func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)] {
        try await database.pool.read { db in
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
                arguments: [seriesID, fromMs, toMs, limit]
            )
            var result: [(timestampMs: Int64, value: Double)] = []
            while let row = try rows.next() {
                result.append((row[0], row[1]))
            }
            return result
        }
    }

    package func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await database.pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM points WHERE series_id = ? AND ts >= ? AND ts <= ?",
                arguments: [seriesID, fromMs, toMs]
            ) ?? 0
        }
    }

    package func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await database.pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT COALESCE(SUM(count), 0) FROM \(rollup.table) WHERE series_id = ? AND bucket >= ? AND bucket < ?",
                arguments: [seriesID, fromMs, toMs]
            ) ?? 0
        }
    }

    package func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket] {
        let sql =
            if let source {
                """
                SELECT (bucket / ?1) * ?1 AS b, SUM(count), SUM(sum), MIN(min), MAX(max) FROM \(source.table)
                WHERE series_id = ?2 AND bucket >= ?3 AND bucket < ?4 GROUP BY b ORDER BY b
                """
            } else {
                """
                SELECT (ts / ?1) * ?1 AS b, COUNT(*), SUM(value), MIN(value), MAX(value) FROM points
                WHERE series_id = ?2 AND ts >= ?3 AND ts < ?4 GROUP BY b ORDER BY b
                """
            }
        return try await database.pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: [widthMs, seriesID, fromMs, toMs]).map { row in
                Bucket(startMs: row[0], count: row[1], sum: row[2], min: row[3], max: row[4])
            }
        }
    }

    // MARK: Housekeeping

    package func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws {
        let cutoff = pointsBefore.millisecondsSince1970
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM points WHERE series_id IN (SELECT id FROM series) AND ts < ?", arguments: [cutoff])
            for rollup in Rollup.allCases {
                try db.execute(sql: "DELETE FROM \(rollup.table) WHERE bucket < ?", arguments: [cutoff - cutoff % rollup.widthMs])
            }
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [idempotencyKeysBefore.millisecondsSince1970])
        }
    }
}
