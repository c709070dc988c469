import Foundation
import PulseboardAccounts
import PulseboardClassroom
import PulseboardCourses
import PulseboardKernel

/// Every setting of the server. The command line fills it from flags, then `PULSEBOARD_*`
/// environment variables, then these defaults.
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var dataDirectory = "./pulseboard-data"
    /// `postgres://…`: use PostgreSQL (several instances may share it); nil: SQLite in the data folder.
    public var databaseURL: String?
    /// How long a request waits for a PostgreSQL connection before answering 503.
    public var databaseWait: Duration = .seconds(2)
    /// Connections this instance opens at most to PostgreSQL (all instances and other clients
    /// share the server's `max_connections`).
    public var databasePoolSize = 16
    /// Nil: generated once and kept in the data directory (owner-only permissions).
    public var jwtSecret: String?
    public var adminEmail = "admin@example.com"
    /// Nil: a password is generated and printed once when the admin is created.
    public var adminPassword: String?
    public var accessTokenLifetime: Duration = .seconds(15 * 60)
    /// How long a request's user check may be answered from memory; every access change empties
    /// it at once, so this bounds only changes no instance announces (the command line's).
    public var userCheckCacheLifetime: Duration = .seconds(2)
    public var refreshTokenLifetime: Duration = .seconds(30 * 86_400)
    public var sessionLifetime: Duration = .seconds(12 * 3600)
    public var bcryptCost = PasswordHasher.defaultCost
    public var loginLimits = LoginLimiter.Limits()
    /// Requests one client (user, ingest token, class token, else address) may make per
    /// `rateLimitPeriod`, on each instance; 0: no limit.
    public var rateLimit = 0
    public var rateLimitPeriod: Duration = .seconds(60)
    public var maxBodyBytes = 10 * 1024 * 1024
    public var maxBatchPoints = 10_000
    /// Points that may wait for the writer before ingest answers 503.
    public var writeQueuePoints = 200_000
    /// Recent messages kept per live channel for clients that resume with `since`.
    public var liveHistory = 256
    /// …and at most this many bytes of them per channel.
    public var liveHistoryBytes = 4 << 20
    /// Messages queued per WebSocket client before it is dropped as too slow.
    public var sendQueueMessages = 1024
    public var hostMetrics = true
    public var collectInterval: Duration = .seconds(1)
    public var demo = false
    public var retentionDays = 30
    /// The request log and the task progress log (seed 003), and the days they are kept.
    public var requestLog = true
    public var requestLogDays = 7
    /// How many learning events without a class are kept, per client address and in all.
    package var strayEventBounds = StrayEvents.Bounds()
    /// A chunk is merged with the other small chunks of its series and hour once its newest
    /// point is this old; compaction passes run as often.
    public var compactAfter: Duration = .seconds(60)
    public var idempotencyHours = 24
    /// Samples one PromQL query may read (the Prometheus API answers 422 past it).
    public var queryMaxSamples = 20_000_000
    public var behindTLS = false
    /// The server's address as users and students reach it (`https://pulse.example.edu`), for the
    /// class `serverUrl`s it hands out; nil: the address each request was sent to.
    public var publicURL: String?
    /// Proxies (addresses or CIDR ranges) whose X-Forwarded-For, X-Real-IP and X-Forwarded-Proto
    /// are believed; from anyone else those headers are ignored.
    public var trustedProxies: [String] = []
    /// How long an HTTP connection may go without a complete request head, from its start or
    /// since its last response: bounds both keep-alive idling and clients that never finish
    /// their headers (slowloris). WebSockets are not affected (they have pings).
    public var idleTimeout: Duration = .seconds(30)
    /// Open connections (HTTP and WebSocket) in all, and from one client address; beyond either a
    /// new connection is closed at once. Behind a proxy every client has the proxy's address, so
    /// the per-address cap is then the proxy's share; limit clients in the proxy (nginx `limit_conn`).
    public var maxConnections = 16_384
    public var maxConnectionsPerAddress = 2_048
    /// Accept learning events without a class token (into the class with code `open`): for a
    /// local classroom only.
    public var openIngest = false
    /// Keep test events in memory under /api/v1/test/events (end-to-end checks only).
    public var enableTestAPI = false
    /// Browser origins allowed to call the API with credentials (CORS); ingest routes allow any origin.
    public var corsOrigins: [String] = []
    /// Minutes without events after which a student counts as idle.
    public var idleMinutes = 5
    /// Where submitted notebooks are kept; nil: `<data>/submissions` with SQLite, inside the
    /// database with PostgreSQL.
    public var submissionsDirectory: String?

    public init() {}

    public var databasePath: String { dataDirectory + "/pulseboard.sqlite" }

    var notebookFiles: NotebookFiles {
        if let submissionsDirectory { return .directory(URL(fileURLWithPath: submissionsDirectory)) }
        return databaseURL == nil ? .directory(URL(fileURLWithPath: dataDirectory + "/submissions")) : .database
    }
}
