import Foundation
import Logging
import ServiceLifecycle

/// The engine-neutral database every feature talks to: portable statements in transactions and
/// reads, the numbered migrations, and notifications between instances. SQLite (one machine)
/// and PostgreSQL (several instances) implement it; neither knows a feature. As a `Service`,
/// `run()` keeps the engine's connections for as long as the server runs.
public protocol Database: Service {
    /// Applies the migrations whose versions are not yet recorded, in order.
    func migrate(_ migrations: [Migration]) async throws
    /// Answers when the database does (for `/health`).
    func ping() async throws
    /// Runs the statements in one transaction and returns the rows each one produced.
    @discardableResult
    func transaction(_ statements: [SQLStatement]) async throws -> [[SQLRow]]
    /// Runs one query outside any write transaction.
    func select(_ statement: SQLStatement) async throws -> [SQLRow]
    /// The same, with the column names (see `select(_:as:)`).
    func selectNamed(_ statement: SQLStatement) async throws -> [NamedRow]
    /// Messages between the instances that share this database; nil when only one instance can
    /// use it (the embedded engine).
    var notifications: (any InstanceNotifications)? { get }
    /// The connection pool now: nil for the embedded engine.
    func connectionUse() async throws -> ConnectionUse?
    /// Rows a statement of many rows (a set-based insert or update) should hold at most on this
    /// engine: SQLite keeps the statements it runs prepared, which is cheap to reuse and costly
    /// to make, so its statements are small and of few sizes; each PostgreSQL statement is a
    /// round trip, so its statements hold as many rows as fit.
    var rowsPerStatement: Int { get }
}

/// A connection pool's connections: leased (`inUse`), open and waiting (`idle`), and the most it opens.
public struct ConnectionUse: Sendable {
    public var inUse: Int
    public var idle: Int
    public var maximum: Int

    public init(inUse: Int, idle: Int, maximum: Int) {
        self.inUse = inUse
        self.idle = idle
        self.maximum = maximum
    }
}

/// LISTEN/NOTIFY: short text messages to every instance listening on a channel.
public protocol InstanceNotifications: Sendable {
    /// Sends `payload` (at most 8,000 bytes) to the listeners of `channel`.
    func notify(_ channel: String, payload: String) async throws
    /// Delivers the payloads sent on `channel` until cancelled or shut down. A lost connection is
    /// re-established with backoff; `connected` runs after every (re)connect, so that the caller
    /// can catch up on what was sent while it was not listening.
    func listen(_ channel: String, connected: @escaping @Sendable () async -> Void, received: @escaping @Sendable (String) async -> Void) async
    /// Whether a LISTEN connection is up now (false while it reconnects).
    var isListening: Bool { get }
}

extension Database {
    /// Runs one query and decodes each row into `T` by column name (`NamedRow.decode`).
    package func select<T: Decodable>(_ statement: SQLStatement, as type: T.Type) async throws -> [T] {
        try await selectNamed(statement).map { try $0.decode(T.self) }
    }

    /// Runs a query that answers one value (a count, an id, an email): the value of its only
    /// column in the first row, nil when there is no row. A row of more columns is an error.
    package func selectValue(_ statement: SQLStatement) async throws -> SQLValue? {
        guard let row = try await select(statement).first else { return nil }
        guard row.count == 1 else { throw UnexpectedRow(table: "a one-value query", row: row) }
        return row[0]
    }

    /// A `COUNT(*)`-like query's number; no row or a non-integer is an error.
    package func selectCount(_ statement: SQLStatement) async throws -> Int64 {
        guard let count = try await selectValue(statement)?.int else { throw UnexpectedRow(table: "a count", row: []) }
        return count
    }

    /// Runs the database for the duration of `body`: for the command line and first-start chores.
    public func whileRunning<T: Sendable>(_ body: @Sendable (Self) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.run()
                return nil
            }
            let result = try await body(self)
            group.cancelAll()
            return result
        }
    }
}

public enum StoreError: Error, Equatable {
    /// A unique value (an email, say) is taken.
    case conflict(String)
    /// The database cannot be reached or answered with an error that a retry may fix.
    case unavailable(String)
}
