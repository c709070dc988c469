import Foundation
import GRDB
import ServiceLifecycle
import Synchronization

/// The embedded engine: one SQLite file in WAL mode through GRDB's `DatabasePool` (one writer,
/// concurrent readers). Commits are fsynced (`synchronous = FULL`): an acknowledged write survives
/// a crash of the process and of the machine.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    /// Series ids by key. Filled only after a commit succeeds, so it never holds an id that a
    /// rolled-back transaction handed out.
    private let seriesIDs = Mutex<[SeriesKey: Int64]>([:])

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // The writer's page cache holds a whole group commit (the 2 MB default made SQLite
            // spill pages to disk in the middle of large commits, seen with perf).
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA cache_size = -32768") }
        }
        pool = try DatabasePool(path: path, configuration: configuration)
    }

    public func migrate() async throws {
        try await pool.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            let applied = Set(try Int.fetchAll(db, sql: "SELECT version FROM schema_version"))
            for migration in Migrations.all where !applied.contains(migration.version) {
                for statement in migration.statements(for: .sqlite) {
                    try db.execute(sql: statement)
                }
                try db.execute(
                    sql: "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    arguments: [migration.version, migration.name, Date().millisecondsSince1970]
                )
            }
        }
    }

    /// Nothing to run for an embedded database: waits for shutdown.
    public func run() async throws {
        try? await gracefulShutdown()
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Users

    public func countUsers() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0 }
    }

    public func countAdmins() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE role = 'admin'") ?? 0 }
    }

    public func user(id: Int64) async throws -> User? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(Self.user)
        }
    }

    public func user(email: String) async throws -> User? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email]).map(Self.user)
        }
    }

    public func listUsers() async throws -> [User] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY id").map(Self.user)
        }
    }

    private static func user(_ row: Row) -> User {
        User(
            id: row["id"],
            email: row["email"],
            role: Role(rawValue: row["role"]) ?? .student,
            passwordHash: row["password_hash"],
            createdAt: Date(millisecondsSince1970: row["created_at"]),
            tokenGeneration: row["token_generation"]
        )
    }

    // MARK: Sessions

    public func insertSession(hash: String, userID: Int64, kind: SessionKind, family: String, expiresAt: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO sessions (token_hash, user_id, kind, family, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [hash, userID, kind.rawValue, family, Date().millisecondsSince1970, expiresAt.millisecondsSince1970]
            )
        }
    }

    public func sessionUser(hash: String, kind: SessionKind, now: Date) async throws -> Int64? {
        try await pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT user_id FROM sessions WHERE token_hash = ? AND kind = ? AND expires_at > ? AND used_at IS NULL",
                arguments: [hash, kind.rawValue, now.millisecondsSince1970]
            )
        }
    }

    // MARK: Ingest tokens

    public func listIngestTokens() async throws -> [IngestToken] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ingest_tokens ORDER BY id").map(Self.ingestToken)
        }
    }

    public func activeIngestToken(hash: String) async throws -> IngestToken? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM ingest_tokens WHERE token_hash = ? AND revoked_at IS NULL", arguments: [hash])
                .map(Self.ingestToken)
        }
    }

    private static func ingestToken(_ row: Row) -> IngestToken {
        IngestToken(
            id: row["id"],
            name: row["name"],
            prefix: row["prefix"],
            createdAt: Date(millisecondsSince1970: row["created_at"]),
            revokedAt: (row["revoked_at"] as Int64?).map(Date.init(millisecondsSince1970:))
        )
    }

    // MARK: Metrics

    public func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome] {
        let known = seriesIDs.withLock { $0 }
        let (outcomes, created) = try await pool.write { db -> ([CommitOutcome], [SeriesKey: Int64]) in
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
                let newEvents = try batch.events.filter { try !Self.run(EventLog.insert($0, receivedAt: now), in: db).isEmpty }
                outcomes.append(.stored(points: batch.points.count, newEvents: newEvents))
            }
            try Self.apply(aggregates, in: db)
            return (outcomes, created)
        }
        if !created.isEmpty {
            seriesIDs.withLock { $0.merge(created) { old, _ in old } }
        }
        return outcomes
    }

    // MARK: Portable statements

    @discardableResult
    public func transaction(_ statements: [SQLStatement]) async throws -> [[SQLRow]] {
        try await mapConflicts("A unique value is taken.") {
            try await pool.write { db in
                var results: [[SQLRow]] = []
                for statement in statements { results.append(try Self.run(statement.resolving(results), in: db)) }
                return results
            }
        }
    }

    public func select(_ statement: SQLStatement) async throws -> [SQLRow] {
        try await pool.read { db in try Self.run(statement, in: db) }
    }

    private static func run(_ statement: SQLStatement, in db: Database) throws -> [SQLRow] {
        let arguments = StatementArguments(
            statement.arguments.map { value -> (any DatabaseValueConvertible)? in
                switch value {
                case .integer(let number): number
                case .real(let number): number
                case .text(let text): text
                case .blob(let data): data
                case .null, .returned: nil
                }
            })
        return try Row.fetchAll(db.cachedStatement(sql: statement.sql), arguments: arguments).map { row in
            row.databaseValues.map { value in
                switch value.storage {
                case .int64(let number): .integer(number)
                case .double(let number): .real(number)
                case .string(let text): .text(text)
                case .blob(let data): .blob(data)
                case .null: .null
                }
            }
        }
    }

    private static func findOrCreateSeries(_ key: SeriesKey, in db: Database) throws -> Int64 {
        let tags = key.canonicalTags
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM series WHERE name = ? AND tags = ?", arguments: [key.name, tags]) {
            return id
        }
        try db.execute(sql: "INSERT INTO series (name, tags) VALUES (?, ?)", arguments: [key.name, tags])
        return db.lastInsertedRowID
    }

    private static func apply(_ aggregates: CommitAggregates, in db: Database) throws {
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

    public func seriesID(_ key: SeriesKey) async throws -> Int64? {
        if let id = seriesIDs.withLock({ $0[key] }) { return id }
        return try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT id FROM series WHERE name = ? AND tags = ?", arguments: [key.name, key.canonicalTags])
        }
    }

    public func listSeries() async throws -> [SeriesSummary] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, tags, last_ts, last_value FROM series ORDER BY name, tags").map { row in
                SeriesSummary(
                    series: SeriesKey(name: row["name"], tags: SeriesKey.tags(fromCanonical: row["tags"])),
                    lastTimestampMs: row["last_ts"],
                    lastValue: row["last_value"]
                )
            }
        }
    }

    public func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)] {
        try await pool.read { db in
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

    public func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM points WHERE series_id = ? AND ts >= ? AND ts <= ?",
                arguments: [seriesID, fromMs, toMs]
            ) ?? 0
        }
    }

    public func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT COALESCE(SUM(count), 0) FROM \(rollup.table) WHERE series_id = ? AND bucket >= ? AND bucket < ?",
                arguments: [seriesID, fromMs, toMs]
            ) ?? 0
        }
    }

    public func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket] {
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
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: [widthMs, seriesID, fromMs, toMs]).map { row in
                Bucket(startMs: row[0], count: row[1], sum: row[2], min: row[3], max: row[4])
            }
        }
    }

    // MARK: Housekeeping

    public func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws {
        let cutoff = pointsBefore.millisecondsSince1970
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM points WHERE series_id IN (SELECT id FROM series) AND ts < ?", arguments: [cutoff])
            for rollup in Rollup.allCases {
                try db.execute(sql: "DELETE FROM \(rollup.table) WHERE bucket < ?", arguments: [cutoff - cutoff % rollup.widthMs])
            }
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [idempotencyKeysBefore.millisecondsSince1970])
            try db.execute(sql: "DELETE FROM sessions WHERE expires_at <= ?", arguments: [now.millisecondsSince1970])
        }
    }

    private func mapConflicts<T>(_ message: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict(message)
        }
    }
}
