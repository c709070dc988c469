import Foundation
import GRDB
import PulseboardDatabase
import PulseboardKernel
import ServiceLifecycle

/// The embedded engine: one SQLite file in WAL mode through GRDB's `DatabasePool` (one writer,
/// concurrent readers). Commits are fsynced (`synchronous = FULL`): an acknowledged write survives
/// a crash of the process and of the machine.
public final class SQLiteEngine: PulseboardDatabase.Database {
    /// For repositories whose hot path runs GRDB statements directly (the metrics commit).
    package let pool: DatabasePool
    /// One instance per database file: nobody to notify.
    public let notifications: (any InstanceNotifications)? = nil
    /// Statements of 64 rows of up to 16 values stay under `prepared`'s 1,024 bound values, so
    /// each size is prepared once and kept.
    public var rowsPerStatement: Int { Self.rowsPerStatement }
    package static let rowsPerStatement = 64
    public func connectionUse() async throws -> ConnectionUse? { nil }

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

    /// Copies the database into a new file at `path` with SQLite's online backup, while servers
    /// keep writing: the copy is the database as of one moment, checkpointed into one file.
    public func backup(to path: String) throws {
        let copy = try DatabaseQueue(path: path)
        try pool.backup(to: copy)
        try copy.close()
    }

    public func migrate(_ migrations: [Migration]) async throws {
        for run in Migration.runs(migrations) {
            if let first = run.first, let step = first.dataStep, try await !appliedVersions().contains(first.version) {
                try await step(self)
            }
            try await pool.write { db in
                let applied = try Self.appliedVersions(db)
                for migration in run where !applied.contains(migration.version) {
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
    }

    private func appliedVersions() async throws -> Set<Int> {
        try await pool.write { try Self.appliedVersions($0) }
    }

    private static func appliedVersions(_ db: GRDB.Database) throws -> Set<Int> {
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
        return Set(try Int.fetchAll(db, sql: "SELECT version FROM schema_version"))
    }

    /// Nothing to run for an embedded database: waits for shutdown.
    public func run() async throws {
        try? await gracefulShutdown()
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Portable statements

    @discardableResult
    public func transaction(_ statements: [SQLStatement]) async throws -> [[SQLRow]] {
        try await mapConflicts("A unique value is taken.") {
            try await pool.write { db in
                var results: [[SQLRow]] = []
                for statement in statements { results.append(try statement.checked(Self.run(statement.resolving(results), in: db))) }
                return results
            }
        }
    }

    public func select(_ statement: SQLStatement) async throws -> [SQLRow] {
        try await pool.read { db in try Self.run(statement, in: db) }
    }

    public func selectNamed(_ statement: SQLStatement) async throws -> [NamedRow] {
        try await pool.read { db in
            try Row.fetchAll(Self.prepared(statement, in: db), arguments: Self.arguments(statement)).map {
                NamedRow(columns: Array($0.columnNames), values: Self.values($0))
            }
        }
    }

    package static func run(_ statement: SQLStatement, in db: GRDB.Database) throws -> [SQLRow] {
        try Row.fetchAll(prepared(statement, in: db), arguments: arguments(statement)).map(values)
    }

    /// Kept for reuse when it binds few values (a fixed text, run again and again); made afresh
    /// when it binds many: those are statements of many rows whose text changes with the number
    /// of rows, and GRDB's cache, which never forgets one, kept each size prepared (a server
    /// taking event batches of random sizes grew by 600 MB every 10 s).
    private static func prepared(_ statement: SQLStatement, in db: GRDB.Database) throws -> Statement {
        statement.arguments.count <= 1_024 ? try db.cachedStatement(sql: statement.sql) : try db.makeStatement(sql: statement.sql)
    }

    private static func arguments(_ statement: SQLStatement) -> StatementArguments {
        StatementArguments(
            statement.arguments.map { value -> (any DatabaseValueConvertible)? in
                switch value {
                case .integer(let number): number
                case .real(let number): number
                case .text(let text): text
                case .blob(let data): data
                case .null, .returned: nil
                }
            })
    }

    private static func values(_ row: Row) -> SQLRow {
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

    private func mapConflicts<T>(_ message: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict(message)
        }
    }
}
