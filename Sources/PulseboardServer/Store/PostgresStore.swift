import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The engine for several instances: PostgreSQL through PostgresNIO's connection pool. Bulk
/// writes send whole columns as arrays (`unnest`), so a commit of thousands of points is a handful
/// of statements. Run it (`run()`) as a service: it is the pool.
public final class PostgresStore: Store {
    let client: PostgresClient
    let logger: Logger
    private let seriesIDs = Mutex<[SeriesKey: Int64]>([:])

    /// This process among the instances sharing the database. Its commits are numbered 1, 2, 3…
    /// in the live log (one writer per instance makes that order the commit order), which is how
    /// other instances fetch exactly what they have not seen.
    let instanceID = UUID().uuidString.lowercased()
    private let liveSequence = Mutex<Int64>(0)
    /// Rings after every commit that logged points; `PostgresFanout` turns it into a NOTIFY.
    let committed: AsyncStream<Void>
    private let ringCommitted: AsyncStream<Void>.Continuation

    /// How long a request waits for a connection before the database counts as unavailable.
    let connectionWait: Duration

    public init(url: String, logger: Logger, connectionWait: Duration = .seconds(2)) throws {
        client = PostgresClient(configuration: try Self.configuration(url, connectTimeout: connectionWait), backgroundLogger: logger)
        self.logger = logger
        self.connectionWait = connectionWait
        (committed, ringCommitted) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    public func run() async throws {
        await client.run()
    }

    /// `postgres://user:password@host:port/database` (password and port optional).
    static func configuration(_ url: String, connectTimeout: Duration = .seconds(2)) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, let user = components.user
        else {
            throw ConfigurationError("The database URL is postgres://user:password@host:port/database.")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database,
            tls: .disable
        )
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = 16
        return configuration
    }

    // MARK: Schema

    public func migrate() async throws {
        try await transaction { connection in
            // One instance migrates at a time; the others wait, then find nothing left to do.
            try await connection.query("SELECT pg_advisory_xact_lock(727274)", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                logger: self.logger
            )
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM schema_version", logger: self.logger).decode(Int.self) {
                applied.insert(version)
            }
            for migration in Migrations.all where !applied.contains(migration.version) {
                for statement in migration.statements(for: .postgres) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                let now = Date().millisecondsSince1970
                try await connection.query(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(now))",
                    logger: self.logger
                )
            }
        }
    }

    public func ping() async throws {
        try await query("SELECT 1")
    }

    // MARK: Users

    public func countUsers() async throws -> Int {
        try await single("SELECT COUNT(*)::BIGINT FROM users", as: Int64.self).map(Int.init) ?? 0
    }

    public func countAdmins() async throws -> Int {
        try await single("SELECT COUNT(*)::BIGINT FROM users WHERE role = 'admin'", as: Int64.self).map(Int.init) ?? 0
    }

    public func user(id: Int64) async throws -> User? {
        try await users("SELECT id, email, role, password_hash, created_at, token_generation FROM users WHERE id = \(id)").first
    }

    public func user(email: String) async throws -> User? {
        try await users("SELECT id, email, role, password_hash, created_at, token_generation FROM users WHERE email = \(email)").first
    }

    public func listUsers() async throws -> [User] {
        try await users("SELECT id, email, role, password_hash, created_at, token_generation FROM users ORDER BY id")
    }

    private func users(_ sql: PostgresQuery) async throws -> [User] {
        var users: [User] = []
        for row in try await rows(sql) {
            let (id, email, role, hash, created, generation) = try row.decode((Int64, String, String, String, Int64, Int64).self)
            users.append(
                User(
                    id: id, email: email, role: Role(rawValue: role) ?? .student, passwordHash: hash, createdAt: Date(millisecondsSince1970: created),
                    tokenGeneration: generation))
        }
        return users
    }

    // MARK: Sessions

    public func insertSession(hash: String, userID: Int64, kind: SessionKind, family: String, expiresAt: Date) async throws {
        try await query(
            "INSERT INTO sessions (token_hash, user_id, kind, family, created_at, expires_at) VALUES (\(hash), \(userID), \(kind.rawValue), \(family), \(Date().millisecondsSince1970), \(expiresAt.millisecondsSince1970))"
        )
    }

    public func sessionUser(hash: String, kind: SessionKind, now: Date) async throws -> Int64? {
        try await single(
            "SELECT user_id FROM sessions WHERE token_hash = \(hash) AND kind = \(kind.rawValue) AND expires_at > \(now.millisecondsSince1970) AND used_at IS NULL",
            as: Int64.self
        )
    }

    // MARK: Ingest tokens

    public func listIngestTokens() async throws -> [IngestToken] {
        try await ingestTokens("SELECT id, name, prefix, created_at, revoked_at FROM ingest_tokens ORDER BY id")
    }

    public func activeIngestToken(hash: String) async throws -> IngestToken? {
        try await ingestTokens("SELECT id, name, prefix, created_at, revoked_at FROM ingest_tokens WHERE token_hash = \(hash) AND revoked_at IS NULL").first
    }

    private func ingestTokens(_ sql: PostgresQuery) async throws -> [IngestToken] {
        var tokens: [IngestToken] = []
        for row in try await rows(sql) {
            let (id, name, prefix, created, revoked) = try row.decode((Int64, String, String, Int64, Int64?).self)
            tokens.append(
                IngestToken(
                    id: id,
                    name: name,
                    prefix: prefix,
                    createdAt: Date(millisecondsSince1970: created),
                    revokedAt: revoked.map(Date.init(millisecondsSince1970:))
                )
            )
        }
        return tokens
    }

    // MARK: Metrics

    public func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome] {
        let known = seriesIDs.withLock { $0 }
        let logger = self.logger
        let instance = instanceID
        let sequence = liveSequence.withLock { $0 } + 1
        let (outcomes, created, logged) = try await transaction { connection -> ([CommitOutcome], [SeriesKey: Int64], [LoggedPoint]) in
            var logged: [LoggedPoint] = []
            var outcomes: [CommitOutcome] = []
            var created: [SeriesKey: Int64] = [:]
            var aggregates = CommitAggregates()
            var ids: [Int64] = []
            var timestamps: [Int64] = []
            var values: [Double] = []
            for batch in batches {
                if let key = batch.idempotencyKey {
                    let claimed = try await connection.query(
                        "INSERT INTO idempotency_keys (key, created_at, points) VALUES (\(key), \(now.millisecondsSince1970), \(Int64(batch.points.count))) ON CONFLICT (key) DO NOTHING RETURNING key",
                        logger: logger
                    ).collect()
                    if claimed.isEmpty {
                        outcomes.append(.duplicate)
                        continue
                    }
                }
                for point in batch.points {
                    let id: Int64
                    if let existing = known[point.series] ?? created[point.series] {
                        id = existing
                    } else {
                        id = try await Self.findOrCreateSeries(point.series, on: connection, logger: logger)
                        created[point.series] = id
                    }
                    ids.append(id)
                    logged.append(LoggedPoint(point))
                    timestamps.append(point.timestampMs)
                    values.append(point.value)
                    aggregates.add(seriesID: id, timestampMs: point.timestampMs, value: point.value)
                }
                let newEvents = try await Self.insert(batch.events, receivedAt: now, on: connection, logger: logger)
                outcomes.append(.stored(points: batch.points.count, newEvents: newEvents))
            }
            if !ids.isEmpty {
                try await connection.query(
                    "INSERT INTO points (series_id, ts, value) SELECT * FROM unnest(\(ids)::BIGINT[], \(timestamps)::BIGINT[], \(values)::DOUBLE PRECISION[])",
                    logger: logger
                )
                try await Self.apply(aggregates, on: connection, logger: logger)
                let payload = String(decoding: try JSONEncoder().encode(logged), as: UTF8.self)
                try await connection.query(
                    "INSERT INTO live_log (instance, seq, created_at, points) VALUES (\(instance), \(sequence), \(now.millisecondsSince1970), \(payload))",
                    logger: logger
                )
            }
            return (outcomes, created, logged)
        }
        if !created.isEmpty {
            seriesIDs.withLock { $0.merge(created) { old, _ in old } }
        }
        if !logged.isEmpty {
            liveSequence.withLock { $0 = sequence }
            ringCommitted.yield()
        }
        return outcomes
    }

    /// Stores a request's raw learning events with one statement (columns as arrays, like the
    /// points) and returns those not stored before, in the request's order: the same as
    /// `EventLog.insert` one by one, without a round trip per event.
    private static func insert(_ events: [LearningEvent], receivedAt now: Date, on connection: PostgresConnection, logger: Logger) async throws
        -> [LearningEvent]
    {
        guard !events.isEmpty else { return [] }
        let rows = try await connection.query(
            """
            INSERT INTO events (class_id, event_id, event_type, event_time, received_at, email, payload)
            SELECT class_id, event_id, event_type, event_time, \(now.millisecondsSince1970), NULLIF(email, ''), payload
            FROM unnest(\(events.map(\.classID))::BIGINT[], \(events.map(\.eventID))::TEXT[], \(events.map(\.type))::TEXT[],
                        \(events.map(\.timeMs))::BIGINT[], \(events.map { $0.email ?? "" })::TEXT[], \(events.map(\.payload))::TEXT[])
                AS new(class_id, event_id, event_type, event_time, email, payload)
            ON CONFLICT (class_id, event_id) DO NOTHING RETURNING class_id, event_id
            """,
            logger: logger
        ).collect()
        var fresh = Set<String>()
        for row in rows {
            let (classID, eventID) = try row.decode((Int64, String).self)
            fresh.insert("\(classID)/\(eventID)")
        }
        return events.filter { fresh.remove("\($0.classID)/\($0.eventID)") != nil }
    }

    /// Another instance's logged commits after `seq` (oldest first), at most `limit`.
    func liveLog(instance: String, after seq: Int64, notBefore createdMs: Int64, limit: Int64 = 500) async throws -> [(seq: Int64, points: [MetricPoint])] {
        var entries: [(seq: Int64, points: [MetricPoint])] = []
        let rows = try await rows(
            "SELECT seq, points FROM live_log WHERE instance = \(instance) AND seq > \(seq) AND created_at >= \(createdMs) ORDER BY seq LIMIT \(limit)"
        )
        for row in rows {
            let (seq, text) = try row.decode((Int64, String).self)
            let points = try JSONDecoder().decode([LoggedPoint].self, from: Data(text.utf8)).map(\.metricPoint)
            entries.append((seq, points))
        }
        return entries
    }

    /// The instances that logged commits since `createdMs`, with their latest sequence.
    func liveInstances(since createdMs: Int64) async throws -> [(instance: String, seq: Int64)] {
        var result: [(instance: String, seq: Int64)] = []
        let rows = try await rows(
            "SELECT instance, MAX(seq) FROM live_log WHERE created_at >= \(createdMs) AND instance <> \(instanceID) GROUP BY instance"
        )
        for row in rows {
            let (instance, seq) = try row.decode((String, Int64).self)
            result.append((instance, seq))
        }
        return result
    }

    /// A secret every instance must agree on (the JWT key when none is configured): the first
    /// instance stores its proposal, every later one reads it.
    func sharedSecret(named name: String, proposed: String) async throws -> String {
        try await query("INSERT INTO server_secrets (name, value) VALUES (\(name), \(proposed)) ON CONFLICT (name) DO NOTHING")
        return try await single("SELECT value FROM server_secrets WHERE name = \(name)", as: String.self) ?? proposed
    }

    // MARK: Portable statements

    @discardableResult
    public func transaction(_ statements: [SQLStatement]) async throws -> [[SQLRow]] {
        let logger = self.logger
        return try await mapConflicts("A unique value is taken.") {
            try await transaction { connection in
                var results: [[SQLRow]] = []
                for statement in statements {
                    results.append(try await Self.run(statement.resolving(results), on: connection, logger: logger))
                }
                return results
            }
        }
    }

    public func select(_ statement: SQLStatement) async throws -> [SQLRow] {
        let logger = self.logger
        return try await withConnection { try await Self.run(statement, on: $0, logger: logger) }
    }

    private static func run(_ statement: SQLStatement, on connection: PostgresConnection, logger: Logger) async throws -> [SQLRow] {
        var binds = PostgresBindings()
        for argument in statement.arguments {
            switch argument {
            case .integer(let number): binds.append(number)
            case .real(let number): binds.append(number)
            case .text(let text): binds.append(text)
            case .blob(let data): binds.append(ByteBuffer(bytes: data))
            case .null, .returned: binds.appendNull()
            }
        }
        let rows = try await connection.query(PostgresQuery(unsafeSQL: statement.numberedPlaceholders, binds: binds), logger: logger).collect()
        return try rows.map { row in
            try row.map { cell -> SQLValue in
                guard cell.bytes != nil else { return .null }
                switch cell.dataType {
                case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
                case .float4, .float8, .numeric: return .real(try cell.decode(Double.self))
                case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
                case .bytea: return .blob(Data(try cell.decode(ByteBuffer.self).readableBytesView))
                default: return .text(try cell.decode(String.self))
                }
            }
        }
    }

    private static func findOrCreateSeries(_ key: SeriesKey, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        let tags = key.canonicalTags
        for try await id in try await connection.query(
            "INSERT INTO series (name, tags) VALUES (\(key.name), \(tags)) ON CONFLICT (name, tags) DO NOTHING RETURNING id",
            logger: logger
        ).decode(Int64.self) {
            return id
        }
        for try await id in try await connection.query("SELECT id FROM series WHERE name = \(key.name) AND tags = \(tags)", logger: logger).decode(Int64.self) {
            return id
        }
        throw StoreError.unavailable("series \(key.name) vanished")
    }

    private static func apply(_ aggregates: CommitAggregates, on connection: PostgresConnection, logger: Logger) async throws {
        // Rows are touched in id order, so that concurrent instances cannot deadlock on them.
        let series = aggregates.series.sorted { $0.key < $1.key }
        try await connection.query(
            """
            UPDATE series AS s SET
                last_value = CASE WHEN s.last_ts IS NULL OR s.last_ts <= u.ts THEN u.v ELSE s.last_value END,
                last_ts = GREATEST(COALESCE(s.last_ts, u.ts), u.ts)
            FROM unnest(\(series.map(\.key))::BIGINT[], \(series.map(\.value.lastTimestampMs))::BIGINT[], \(series.map(\.value.lastValue))::DOUBLE PRECISION[]) AS u(id, ts, v)
            WHERE s.id = u.id
            """,
            logger: logger
        )
        for (rollup, buckets) in aggregates.rollups {
            let rows = buckets.sorted { ($0.key.seriesID, $0.key.startMs) < ($1.key.seriesID, $1.key.startMs) }
            var binds = PostgresBindings()
            binds.append(rows.map(\.key.seriesID))
            binds.append(rows.map(\.key.startMs))
            binds.append(rows.map(\.value.count))
            binds.append(rows.map(\.value.sum))
            binds.append(rows.map(\.value.min))
            binds.append(rows.map(\.value.max))
            let table = rollup.table
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(table) (series_id, bucket, count, sum, min, max)
                        SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::DOUBLE PRECISION[], $5::DOUBLE PRECISION[], $6::DOUBLE PRECISION[])
                        ON CONFLICT (series_id, bucket) DO UPDATE SET
                            count = \(table).count + excluded.count,
                            sum = \(table).sum + excluded.sum,
                            min = LEAST(\(table).min, excluded.min),
                            max = GREATEST(\(table).max, excluded.max)
                        """,
                    binds: binds
                ),
                logger: logger
            )
        }
    }

    public func seriesID(_ key: SeriesKey) async throws -> Int64? {
        if let id = seriesIDs.withLock({ $0[key] }) { return id }
        return try await single("SELECT id FROM series WHERE name = \(key.name) AND tags = \(key.canonicalTags)", as: Int64.self)
    }

    public func listSeries() async throws -> [SeriesSummary] {
        var result: [SeriesSummary] = []
        for row in try await rows("SELECT name, tags, last_ts, last_value FROM series ORDER BY name, tags") {
            let (name, tags, ts, value) = try row.decode((String, String, Int64?, Double?).self)
            result.append(SeriesSummary(series: SeriesKey(name: name, tags: SeriesKey.tags(fromCanonical: tags)), lastTimestampMs: ts, lastValue: value))
        }
        return result
    }

    public func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)] {
        var result: [(timestampMs: Int64, value: Double)] = []
        let rows = try await rows(
            "SELECT ts, value FROM points WHERE series_id = \(seriesID) AND ts >= \(fromMs) AND ts <= \(toMs) ORDER BY ts LIMIT \(Int64(limit))"
        )
        for row in rows {
            let (ts, value) = try row.decode((Int64, Double).self)
            result.append((ts, value))
        }
        return result
    }

    public func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        try await single(
            "SELECT COUNT(*)::BIGINT FROM points WHERE series_id = \(seriesID) AND ts >= \(fromMs) AND ts <= \(toMs)",
            as: Int64.self
        ) ?? 0
    }

    public func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64 {
        var binds = PostgresBindings()
        binds.append(seriesID)
        binds.append(fromMs)
        binds.append(toMs)
        return try await single(
            PostgresQuery(
                unsafeSQL: "SELECT COALESCE(SUM(count), 0)::BIGINT FROM \(rollup.table) WHERE series_id = $1 AND bucket >= $2 AND bucket < $3",
                binds: binds
            ),
            as: Int64.self
        ) ?? 0
    }

    public func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket] {
        // Timestamps are never negative, so integer division floors like SQLite's.
        let sql =
            if let source {
                """
                SELECT (bucket / $1) * $1 AS b, SUM(count)::BIGINT, SUM(sum), MIN(min), MAX(max) FROM \(source.table)
                WHERE series_id = $2 AND bucket >= $3 AND bucket < $4 GROUP BY b ORDER BY b
                """
            } else {
                """
                SELECT (ts / $1) * $1 AS b, COUNT(*)::BIGINT, SUM(value), MIN(value), MAX(value) FROM points
                WHERE series_id = $2 AND ts >= $3 AND ts < $4 GROUP BY b ORDER BY b
                """
            }
        var binds = PostgresBindings()
        binds.append(widthMs)
        binds.append(seriesID)
        binds.append(fromMs)
        binds.append(toMs)
        var result: [Bucket] = []
        for row in try await rows(PostgresQuery(unsafeSQL: sql, binds: binds)) {
            let (start, count, sum, min, max) = try row.decode((Int64, Int64, Double, Double, Double).self)
            result.append(Bucket(startMs: start, count: count, sum: sum, min: min, max: max))
        }
        return result
    }

    // MARK: Housekeeping

    public func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws {
        let cutoff = pointsBefore.millisecondsSince1970
        try await query("DELETE FROM points WHERE ts < \(cutoff)")
        for rollup in Rollup.allCases {
            var binds = PostgresBindings()
            binds.append(cutoff - cutoff % rollup.widthMs)
            try await query(PostgresQuery(unsafeSQL: "DELETE FROM \(rollup.table) WHERE bucket < $1", binds: binds))
        }
        try await query("DELETE FROM idempotency_keys WHERE created_at < \(idempotencyKeysBefore.millisecondsSince1970)")
        try await query("DELETE FROM sessions WHERE expires_at <= \(now.millisecondsSince1970)")
        try await query("DELETE FROM live_log WHERE created_at < \(now.millisecondsSince1970 - 600_000)")
    }

    // MARK: Helpers

    @discardableResult
    private func query(_ sql: PostgresQuery) async throws -> [PostgresRow] {
        try await rows(sql)
    }

    private func rows(_ sql: PostgresQuery) async throws -> [PostgresRow] {
        let logger = self.logger
        return try await withConnection { try await $0.query(sql, logger: logger).collect() }
    }

    private func single<T: PostgresDecodable & Sendable>(_ sql: PostgresQuery, as type: T.Type) async throws -> T? {
        try await rows(sql).first?.decode(T.self)
    }

    private func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await withConnection { connection in
            do {
                return try await connection.withTransaction(logger: logger) { try await body($0) }
            } catch let error as PostgresTransactionError {
                // What went wrong inside, so that a unique violation is still recognised as one.
                throw error.closureError ?? error.beginError ?? error.commitError ?? error
            }
        }
    }

    private func mapConflicts<T>(_ message: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StoreError.conflict(message)
        }
    }

    /// Runs `body` on a pooled connection. While the database is down the pool keeps retrying to
    /// connect; a request that has no connection after `connectionWait` gives up with
    /// `StoreError.unavailable` (503 with Retry-After) instead of hanging. Once a connection is
    /// held the statement runs to its end. Connection failures also become `unavailable`;
    /// errors the server reports about a statement stay what they are.
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connected = Flag()
        let (client, wait) = (self.client, connectionWait)
        do {
            return try await withThrowingTaskGroup(of: ConnectionRace<T>.self) { group in
                group.addTask {
                    .finished(
                        try await client.withConnection { connection in
                            connected.set()
                            return try await body(connection)
                        }
                    )
                }
                group.addTask {
                    try await Task.sleep(for: wait)
                    return connected.isSet ? .connected : .timedOut
                }
                while let result = try await group.next() {
                    switch result {
                    case .finished(let value):
                        group.cancelAll()
                        return value
                    case .connected:
                        continue
                    case .timedOut:
                        group.cancelAll()
                        throw StoreError.unavailable("no database connection within \(wait)")
                    }
                }
                throw StoreError.unavailable("cancelled")
            }
        } catch let error as PSQLError where error.code == .server {
            throw error
        } catch let error as StoreError {
            throw error
        } catch {
            // A lost connection, a pool that cannot connect, a cancelled wait.
            logger.warning("Database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            throw StoreError.unavailable("\(error)")
        }
    }
}

private enum ConnectionRace<T: Sendable>: Sendable {
    case finished(T)
    case connected
    case timedOut
}

/// A committed point as the live log keeps it (compact JSON).
struct LoggedPoint: Codable {
    var n: String
    var t: [String: String]?
    var ts: Int64
    var v: Double

    init(_ point: MetricPoint) {
        n = point.series.name
        t = point.series.tags.isEmpty ? nil : point.series.tags
        ts = point.timestampMs
        v = point.value
    }

    var metricPoint: MetricPoint {
        MetricPoint(series: SeriesKey(name: n, tags: t ?? [:]), timestampMs: ts, value: v)
    }
}
