import Foundation
import Logging
import ServiceLifecycle

/// Everything Pulseboard keeps durably. Features talk to this protocol only, so that SQLite (one
/// machine) and PostgreSQL (several instances) are interchangeable below them. As a `Service`,
/// `run()` keeps the engine's connections for as long as the server runs.
public protocol Store: Service {
    /// Applies the numbered migrations that are not yet applied.
    func migrate() async throws
    /// Answers when the database does (for `/health`).
    func ping() async throws

    // MARK: Users
    func countUsers() async throws -> Int
    func user(id: Int64) async throws -> User?
    func user(email: String) async throws -> User?
    func listUsers() async throws -> [User]
    func countAdmins() async throws -> Int

    // MARK: Sessions (API refresh tokens and browser sessions), stored as SHA-256 of the secret
    // A session belongs to a family: a login and every refresh token rotated from it.
    func insertSession(hash: String, userID: Int64, kind: SessionKind, family: String, expiresAt: Date) async throws
    /// The user of an unexpired session, without consuming it.
    func sessionUser(hash: String, kind: SessionKind, now: Date) async throws -> Int64?

    // MARK: Ingest tokens
    func listIngestTokens() async throws -> [IngestToken]
    func activeIngestToken(hash: String) async throws -> IngestToken?

    // MARK: Metrics
    /// Stores the batches in one transaction, in order, and returns one outcome per batch.
    func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome]
    func seriesID(_ key: SeriesKey) async throws -> Int64?
    func listSeries() async throws -> [SeriesSummary]
    /// Raw points in [from, to], oldest first, at most `limit`.
    func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)]
    func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64
    /// Sum of the rollup counts of the buckets that start in [from, to).
    func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64
    /// Buckets of `widthMs` aligned to the epoch, over [from, to), from the raw points or a rollup
    /// whose width divides `widthMs`.
    func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket]

    // MARK: Portable statements (features written once for both engines)
    /// Runs the statements in one transaction and returns the rows each one produced.
    @discardableResult
    func transaction(_ statements: [SQLStatement]) async throws -> [[SQLRow]]
    /// Runs one query outside any write transaction.
    func select(_ statement: SQLStatement) async throws -> [SQLRow]

    // MARK: Housekeeping
    /// Deletes points, rollups, idempotency keys and sessions past their time.
    func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws
}

public enum SessionKind: String, Sendable {
    /// An API refresh token: rotated on every use.
    case refresh
    /// A browser session cookie.
    case browser
}

extension Store {
    /// Runs the store for the duration of `body`: for the command line and first-start chores.
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

/// Opens the engine a configuration names: PostgreSQL for a database URL, else SQLite in the data folder.
public enum StoreFactory {
    public static func open(_ config: ServerConfig, logger: Logger) throws -> any Store {
        if let url = config.databaseURL {
            return try PostgresStore(url: url, logger: logger, connectionWait: config.databaseWait)
        }
        try Bootstrap.prepareDataDirectory(config.dataDirectory)
        return try SQLiteStore(path: config.databasePath)
    }
}
