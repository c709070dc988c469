import Foundation
import GRDB
import PulseboardDatabase
import PulseboardKernel
import PulseboardSQLite
import Synchronization

/// Points, series and rollups in SQLite, written with GRDB's cached statements: the writer's
/// group commit is one transaction that inserts a chunk per series and an upsert per rollup bucket.
package final class SQLiteMetricsStore: MetricsStore {
    let engine: SQLiteEngine
    package var database: any PulseboardDatabase.Database { engine }
    /// Series ids by key. Filled only after a commit succeeds, so it never holds an id that a
    /// rolled-back transaction handed out.
    private let seriesIDs = Mutex<[SeriesKey: Int64]>([:])

    /// One instance per database file: nobody reads a live log.
    package let liveLog: (any LiveLog)? = nil

    package init(engine: SQLiteEngine) {
        self.engine = engine
    }

    package func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome] {
        let known = seriesIDs.withLock { $0 }
        let (outcomes, created) = try await engine.pool.write { db -> ([CommitOutcome], [SeriesKey: Int64]) in
            var created: [SeriesKey: Int64] = [:]
            var outcomes: [CommitOutcome] = []
            let claimKey = try db.cachedStatement(
                sql: "INSERT INTO idempotency_keys (key, created_at, points) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"
            )
            var points: [Int64: [Chunk.Point]] = [:]
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
                    points[id, default: []].append((point.timestampMs, point.value))
                }
                let newRows =
                    try batch.rowsOnce.map { rowsOnce in
                        rowsOnce.newRows(returnedKeys: try rowsOnce.statements().flatMap { try SQLiteEngine.run($0, in: db) })
                    } ?? []
                outcomes.append(.stored(points: batch.points.count, newRows: newRows))
            }
            let insertChunk = try db.cachedStatement(sql: "INSERT INTO chunks (series_id, start_ts, end_ts, count, data) VALUES (?, ?, ?, ?, ?)")
            let sorted = Chunk.sorted(points)
            for (id, chunk) in Chunk.cut(sorted) {
                try insertChunk.execute(arguments: [id, chunk.startMs, chunk.endMs, chunk.count, Data(chunk.bytes)])
            }
            try Self.apply(CommitAggregates(sorted), in: db)
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
            for (id, bucket) in buckets {
                try upsert.execute(arguments: [id, bucket.startMs, bucket.count, bucket.sum, bucket.min, bucket.max])
            }
        }
    }

    package func knownSeriesID(_ key: SeriesKey) -> Int64? {
        seriesIDs.withLock { $0[key] }
    }
}
