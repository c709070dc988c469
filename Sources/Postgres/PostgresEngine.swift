import Foundation
import Logging
import NIOSSL
import PostgresNIO
import PulseboardDatabase
import PulseboardKernel
import ServiceLifecycle
import Synchronization

/// The engine for several instances: PostgreSQL through PostgresNIO's connection pool. Run it
/// (`run()`) as a service: it is the pool. Its LISTEN/NOTIFY carries messages between the
/// instances (`notifications`).
public final class PostgresEngine: Database, InstanceNotifications {
    /// For repositories whose hot path sends whole columns as arrays (`unnest`): the metrics commit.
    package let client: PostgresClient
    package let logger: Logger
    public var notifications: (any InstanceNotifications)? { self }
    /// 2,000 rows of up to 16 values stay under PostgreSQL's 65,535 bound values.
    public var rowsPerStatement: Int { Self.rowsPerStatement }
    package static let rowsPerStatement = 2_000

    /// How long a request waits for a connection before the database counts as unavailable.
    let connectionWait: Duration
    /// LISTEN connections up now.
    private let listening = Atomic<Int>(0)
    /// Connections leased now, the LISTEN connection included.
    private let leased = Atomic<Int>(0)
    let poolSize: Int
    /// What this process's connections call themselves on the server (`application_name`), so
    /// that `pg_stat_activity` tells how many are open: PostgresNIO's pool does not.
    let applicationName: String
    /// Set as `run()` starts the pool (see `withConnection`).
    private let running = AtomicFlag()

    public var isListening: Bool { listening.load(ordering: .relaxed) > 0 }

    /// Leases counted here, open connections as the server lists them: the connection that
    /// counted them is back in the pool, idle, when the leases are read.
    public func connectionUse() async throws -> ConnectionUse? {
        let open = try await single("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = \(applicationName)", as: Int64.self) ?? 0
        let inUse = leased.load(ordering: .relaxed)
        return ConnectionUse(inUse: inUse, idle: max(0, Int(open) - inUse), maximum: poolSize)
    }

    /// `poolSize`: the most connections this instance opens (PostgreSQL's `max_connections` is
    /// shared by every instance and every other client).
    public init(url: String, logger: Logger, connectionWait: Duration = .seconds(2), poolSize: Int = 16) throws {
        applicationName = "pulseboard-\(UUID().uuidString.prefix(8).lowercased())"
        var configuration = try Self.configuration(url, connectTimeout: connectionWait, poolSize: poolSize)
        configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        self.connectionWait = connectionWait
        self.poolSize = poolSize
    }

    public func run() async throws {
        running.set()
        await client.run()
    }

    /// `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…` (password, port and
    /// options optional). `sslmode` as libpq reads it: `disable`, `prefer` (the default: TLS when
    /// the server offers it, unverified), `require` (TLS, unverified; with `sslrootcert` the
    /// certificate is checked as with `verify-ca`), `verify-ca` (signed by `sslrootcert`, or by a
    /// system root), `verify-full` (and issued to the URL's host).
    static func configuration(_ url: String, connectTimeout: Duration = .seconds(2), poolSize: Int = 16) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, let user = components.user
        else {
            throw ConfigurationError("The database URL is postgres://user:password@host:port/database.")
        }
        var options: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["sslmode", "sslrootcert"].contains(item.name) else {
                throw ConfigurationError("The database URL's option '\(item.name)' is not one Pulseboard reads (sslmode, sslrootcert).")
            }
            options[item.name] = item.value ?? ""
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database,
            tls: try tls(mode: options["sslmode"] ?? "prefer", rootCertificate: options["sslrootcert"])
        )
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = poolSize
        return configuration
    }

    static func tls(mode: String, rootCertificate: String?) throws -> PostgresClient.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let rootCertificate {
            guard FileManager.default.isReadableFile(atPath: rootCertificate) else {
                throw ConfigurationError("sslrootcert \(rootCertificate) cannot be read.")
            }
            tls.trustRoots = .file(rootCertificate)
        }
        switch mode {
        case "disable":
            return .disable
        case "prefer":
            tls.certificateVerification = .none
            return .prefer(tls)
        case "require":
            tls.certificateVerification = rootCertificate == nil ? .none : .noHostnameVerification
            return .require(tls)
        case "verify-ca":
            tls.certificateVerification = .noHostnameVerification
            return .require(tls)
        case "verify-full":
            tls.certificateVerification = .fullVerification
            return .require(tls)
        default:
            throw ConfigurationError("sslmode '\(mode)' is not one of disable, prefer, require, verify-ca, verify-full.")
        }
    }

    // MARK: Schema

    public func migrate(_ migrations: [Migration]) async throws {
        let logger = self.logger
        // One instance migrates at a time, data steps included (a session lock on a connection
        // of its own); the others wait, then find nothing left to do.
        try await withConnection { lock in
            try await lock.query("SELECT pg_advisory_lock(727274)", logger: logger)
            do {
                for run in Migration.runs(migrations) {
                    if let first = run.first, let step = first.dataStep, try await !self.appliedVersions().contains(first.version) {
                        try await step(self)
                    }
                    try await self.transaction { connection in
                        let applied = try await Self.appliedVersions(on: connection, logger: logger)
                        for migration in run where !applied.contains(migration.version) {
                            for statement in migration.statements(for: .postgres) {
                                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                            }
                            let now = Date().millisecondsSince1970
                            try await connection.query(
                                "INSERT INTO schema_version (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(now))",
                                logger: logger
                            )
                        }
                    }
                }
            } catch {
                _ = try? await lock.query("SELECT pg_advisory_unlock(727274)", logger: logger)
                throw error
            }
            try await lock.query("SELECT pg_advisory_unlock(727274)", logger: logger)
        }
    }

    private func appliedVersions() async throws -> Set<Int> {
        let logger = self.logger
        return try await withConnection { try await Self.appliedVersions(on: $0, logger: logger) }
    }

    private static func appliedVersions(on connection: PostgresConnection, logger: Logger) async throws -> Set<Int> {
        try await connection.query(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", logger: logger)
        var applied = Set<Int>()
        for try await version in try await connection.query("SELECT version FROM schema_version", logger: logger).decode(Int.self) {
            applied.insert(version)
        }
        return applied
    }

    public func ping() async throws {
        try await query("SELECT 1")
    }

    // MARK: Portable statements

    @discardableResult
    public func transaction(_ statements: [SQLStatement]) async throws -> [[SQLRow]] {
        let logger = self.logger
        return try await mapConflicts("A unique value is taken.") {
            try await transaction { connection in
                var results: [[SQLRow]] = []
                for statement in statements {
                    results.append(try statement.checked(await Self.run(statement.resolving(results), on: connection, logger: logger)))
                }
                return results
            }
        }
    }

    public func select(_ statement: SQLStatement) async throws -> [SQLRow] {
        let logger = self.logger
        return try await withConnection { try await Self.run(statement, on: $0, logger: logger) }
    }

    public func selectNamed(_ statement: SQLStatement) async throws -> [NamedRow] {
        let logger = self.logger
        return try await withConnection { connection in
            try await Self.query(statement, on: connection, logger: logger).map { row in
                NamedRow(columns: row.map(\.columnName), values: try Self.values(row))
            }
        }
    }

    package static func run(_ statement: SQLStatement, on connection: PostgresConnection, logger: Logger) async throws -> [SQLRow] {
        try await query(statement, on: connection, logger: logger).map(values)
    }

    private static func query(_ statement: SQLStatement, on connection: PostgresConnection, logger: Logger) async throws -> [PostgresRow] {
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
        return try await connection.query(PostgresQuery(unsafeSQL: statement.numberedPlaceholders, binds: binds), logger: logger).collect()
    }

    private static func values(_ row: PostgresRow) throws -> SQLRow {
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

    // MARK: Notifications between instances

    public func notify(_ channel: String, payload: String) async throws {
        try await query("SELECT pg_notify(\(channel), \(payload))")
    }

    public func listen(
        _ channel: String, connected: @escaping @Sendable () async -> Void, received: @escaping @Sendable (String) async -> Void
    ) async {
        var backoff: Duration = .milliseconds(100)
        while !Task.isCancelledOrShuttingDown {
            do {
                try await untilRunning()
                try await withCountedLease { connection in
                    let notifications = try await connection.listen(channel)
                    listening.add(1, ordering: .relaxed)
                    defer { listening.subtract(1, ordering: .relaxed) }
                    await connected()
                    for try await notification in notifications.cancelOnGracefulShutdown() {
                        await received(notification.payload)
                    }
                }
                backoff = .milliseconds(100)
            } catch {
                if Task.isCancelledOrShuttingDown { return }
                let wait = backoff
                logger.warning("LISTEN connection lost; reconnecting", metadata: ["error": "\(error)", "retry_in": "\(wait)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    // MARK: Helpers

    @discardableResult
    package func query(_ sql: PostgresQuery) async throws -> [PostgresRow] {
        try await rows(sql)
    }

    package func rows(_ sql: PostgresQuery) async throws -> [PostgresRow] {
        let logger = self.logger
        return try await withConnection { try await $0.query(sql, logger: logger).collect() }
    }

    package func single<T: PostgresDecodable & Sendable>(_ sql: PostgresQuery, as type: T.Type) async throws -> T? {
        try await rows(sql).first?.decode(T.self)
    }

    package func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
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

    /// A lease from the pool, counted in `leased` while it is held.
    private func withCountedLease<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            leased.add(1, ordering: .relaxed)
            defer { leased.subtract(1, ordering: .relaxed) }
            return try await body(connection)
        }
    }

    /// Waits until `run()` has started the pool (at most `limit`, else `StoreError.unavailable`).
    /// PostgresNIO keeps a lease made before its pool runs, never serves it and does not give it
    /// up when cancelled: a LISTEN started by a service before the store's `run()`, or a
    /// `whileRunning` body quicker than its `run()` task, hung loaded test runs at shutdown.
    private func untilRunning(within limit: Duration? = nil) async throws {
        let deadline = limit.map { ContinuousClock.now + $0 }
        while !running.isSet {
            if Task.isCancelledOrShuttingDown { throw CancellationError() }
            if let deadline, ContinuousClock.now >= deadline { throw StoreError.unavailable("the database client is not running") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Runs `body` on a pooled connection. While the database is down the pool keeps retrying to
    /// connect; a request that has no connection after `connectionWait` gives up with
    /// `StoreError.unavailable` (503 with Retry-After) instead of hanging. Once a connection is
    /// held the statement runs to its end. Connection failures also become `unavailable`;
    /// errors the server reports about a statement stay what they are.
    package func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connected = AtomicFlag()
        let wait = connectionWait
        try await untilRunning(within: wait)
        do {
            return try await withThrowingTaskGroup(of: ConnectionRace<T>.self) { group in
                group.addTask {
                    .finished(
                        try await self.withCountedLease { connection in
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
