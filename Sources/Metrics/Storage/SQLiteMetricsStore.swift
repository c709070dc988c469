import Foundation
import GRDB
import PulseboardDatabase
import PulseboardKernel
import PulseboardSQLite
import Synchronization

/// Points, series and rollups in SQLite, written with GRDB's cached statements. The writer's
/// group commit appends one row to the point log (`PointLog`: per series the commit's points as
/// a chunk); about once a second, or once the log holds `Fold.points`, a commit folds the whole
/// log into chunks, rollups and the series' last values. A commit of a thousand series with a
/// few samples each (Prometheus's remote write) then writes one row instead of four per series,
/// and a fold writes each series' row once for many commits. Every read of chunks, rollups or
/// last values folds first (`settle`), so a point is readable as soon as its commit returns.
package final class SQLiteMetricsStore: MetricsStore {
    let engine: SQLiteEngine
    package var database: any PulseboardDatabase.Database { engine }
    /// Series ids by key. Filled only after a commit succeeds, so it never holds an id that a
    /// rolled-back transaction handed out.
    private let seriesIDs = Mutex<[SeriesKey: Int64]>([:])
    /// What the point log holds. Changed only inside write transactions, which run one at a time.
    private let unfolded = Mutex(Unfolded())
    let fold: Fold

    /// When a commit folds the log.
    package struct Fold: Sendable {
        /// Points in the log, counting the commit's own.
        var points = 100_000
        /// Time since the oldest row of the log was committed.
        var age = Duration.seconds(1)
    }

    private struct Unfolded {
        /// True at start (the log may hold rows of the last run) and after a failed transaction.
        var unknown = true
        var points = 0
        var oldest: ContinuousClock.Instant?

        var isEmpty: Bool { !unknown && points == 0 }

        func mustFold(adding count: Int, _ fold: Fold) -> Bool {
            unknown || points + count >= fold.points || oldest.map { $0.duration(to: .now) >= fold.age } ?? false
        }
    }

    /// One instance per database file: nobody reads a live log.
    package let liveLog: (any LiveLog)? = nil

    package init(engine: SQLiteEngine, fold: Fold = Fold()) {
        self.engine = engine
        self.fold = fold
    }

    package func settle() async throws {
        guard !unfolded.withLock({ $0.isEmpty }) else { return }
        try await write { db in
            if !self.unfolded.withLock({ $0.isEmpty }) { try self.foldLog(adding: [:], in: db) }
        }
    }

    /// A write transaction; when it fails, what the log holds is no longer known.
    private func write<T: Sendable>(_ body: @escaping @Sendable (GRDB.Database) throws -> T) async throws -> T {
        do {
            return try await engine.pool.write(body)
        } catch {
            unfolded.withLock { $0.unknown = true }
            throw error
        }
    }

    /// Stores the log's points and `points` as chunks, rollups and last values, and empties the log.
    private func foldLog(adding points: [Int64: [Chunk.Point]], in db: GRDB.Database) throws {
        var points = points
        let rows = try Data.fetchCursor(db, sql: "SELECT data FROM point_log")
        while let data = try rows.next() {
            for (id, logged) in try PointLog.decode(data) { points[id, default: []] += logged }
        }
        try db.execute(sql: "DELETE FROM point_log")
        let sorted = Chunk.sorted(points)
        try Self.executeInGroups(
            Chunk.cut(sorted), in: db, statement: "INSERT INTO chunks (series_id, start_ts, end_ts, count, data) VALUES", row: "(?, ?, ?, ?, ?)"
        ) { id, chunk in [id, chunk.startMs, chunk.endMs, chunk.count, Data(chunk.bytes)] }
        try Self.apply(CommitAggregates(sorted), in: db)
        unfolded.withLock { $0 = Unfolded(unknown: false) }
    }

    private func appendToLog(_ points: [Int64: [Chunk.Point]], count: Int, in db: GRDB.Database) throws {
        try db.cachedStatement(sql: "INSERT INTO point_log (count, data) VALUES (?, ?)").execute(arguments: [
            count, Data(PointLog.encode(Chunk.sorted(points))),
        ])
        unfolded.withLock {
            $0.points += count
            if $0.oldest == nil { $0.oldest = .now }
        }
    }

    package func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome] {
        let known = seriesIDs.withLock { $0 }
        let (outcomes, created) = try await write { db -> ([CommitOutcome], [SeriesKey: Int64]) in
            var created: [SeriesKey: Int64] = [:]
            var outcomes: [CommitOutcome] = []
            /// The batches' rows stored once, all in one go after the loop.
            var once: [(outcome: Int, points: Int, rows: RowsOnce)] = []
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
                if let rowsOnce = batch.rowsOnce { once.append((outcomes.count, batch.points.count, rowsOnce)) }
                outcomes.append(.stored(points: batch.points.count))
            }
            if !once.isEmpty {
                let merged = RowsOnce(merging: once.map(\.rows))
                let size = SQLiteEngine.rowsPerStatement
                let newRows = merged.newRows(returnedKeys: try merged.statements(rowsPerStatement: size).flatMap { try SQLiteEngine.run($0, in: db) })
                for statement in merged.pendingStatements(newRows: newRows, rowsPerStatement: size) { _ = try SQLiteEngine.run(statement, in: db) }
                for (part, new) in zip(once, RowsOnce.split(newRows, into: once.map(\.rows))) {
                    outcomes[part.outcome] = .stored(points: part.points, newRows: new)
                }
            }
            let count = points.values.reduce(0) { $0 + $1.count }
            if self.unfolded.withLock({ $0.mustFold(adding: count, self.fold) }) {
                try self.foldLog(adding: points, in: db)
            } else if count > 0 {
                try self.appendToLog(points, count: count, in: db)
            }
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
        try executeInGroups(
            aggregates.series, in: db,
            statement: """
                UPDATE series SET
                    last_value = CASE WHEN last_ts IS NULL OR last_ts <= v.column2 THEN v.column3 ELSE last_value END,
                    last_ts = MAX(COALESCE(last_ts, v.column2), v.column2)
                FROM (VALUES
                """,
            row: "(?, ?, ?)", suffix: ") AS v WHERE series.id = v.column1"
        ) { id, delta in [id, delta.lastTimestampMs, delta.lastValue] }
        for (rollup, buckets) in aggregates.rollups {
            let table = rollup.table
            try executeInGroups(
                buckets, in: db, statement: "INSERT INTO \(table) (series_id, bucket, count, sum, min, max) VALUES", row: "(?, ?, ?, ?, ?, ?)",
                suffix: """
                     ON CONFLICT (series_id, bucket) DO UPDATE SET
                        count = \(table).count + excluded.count,
                        sum = \(table).sum + excluded.sum,
                        min = MIN(\(table).min, excluded.min),
                        max = MAX(\(table).max, excluded.max)
                    """
            ) { id, bucket in [id, bucket.startMs, bucket.count, bucket.sum, bucket.min, bucket.max] }
        }
    }

    /// Runs `statement row, row, … suffix` for the rows, `SQLiteEngine.rowsPerStatement` rows a
    /// statement: a commit of many series, each with a few points (Prometheus's remote write), is
    /// a few statements rather than several per series. The statements are prepared once per size.
    private static func executeInGroups<Row>(
        _ rows: [Row], in db: GRDB.Database, statement: String, row: String, suffix: String = "",
        values: (Row) -> [(any DatabaseValueConvertible)?]
    ) throws {
        let groupSize = SQLiteEngine.rowsPerStatement
        var start = 0
        while start < rows.count {
            let group = rows[start..<min(start + groupSize, rows.count)]
            let sql = statement + " " + Array(repeating: row, count: group.count).joined(separator: ", ") + suffix
            try db.cachedStatement(sql: sql).execute(arguments: StatementArguments(group.flatMap(values)))
            start = group.endIndex
        }
    }

    package func knownSeriesID(_ key: SeriesKey) -> Int64? {
        seriesIDs.withLock { $0[key] }
    }
}
