/// One setting of `pulseboard serve`: its flag, its environment variable, its default and what
/// it does. A flag wins over the variable, the variable over the default. The command line's
/// `--help` is made from this list, its reader takes the variable names from it, and a test
/// checks the README's table against it. Numeric defaults are read from `ServerConfig`, where
/// each is written once.
package struct Setting: Sendable {
    /// Without the dashes; nil for a setting read only from the environment (a secret).
    package let flag: String?
    package let variable: String
    /// As the README writes it.
    package let defaultText: String
    package let summary: String

    /// The `--help` text.
    package var help: String { "\(summary) [env \(variable), default \(defaultText)]" }
}

extension Setting {
    private static let defaults = ServerConfig()

    package static let dataDir = Setting(
        flag: "data-dir", variable: "PULSEBOARD_DATA_DIR", defaultText: defaults.dataDirectory,
        summary: "Folder of the SQLite database and the generated JWT secret.")
    package static let databaseURL = Setting(
        flag: "database-url", variable: "PULSEBOARD_DATABASE_URL", defaultText: "none (SQLite)",
        summary: "postgres://user:password@host:5432/db to use PostgreSQL (several instances may share it).")
    package static let host = Setting(flag: "host", variable: "PULSEBOARD_HOST", defaultText: defaults.host, summary: "Address to listen on.")
    package static let port = Setting(
        flag: "port", variable: "PULSEBOARD_PORT", defaultText: "`PORT` when set, else \(defaults.port)", summary: "Port to listen on.")
    package static let idleTimeout = Setting(
        flag: "idle-timeout", variable: "PULSEBOARD_IDLE_TIMEOUT", defaultText: "\(defaults.idleTimeout.components.seconds)",
        summary: "Seconds an HTTP connection may wait for a complete request head before it is closed.")
    package static let maxConnections = Setting(
        flag: "max-connections", variable: "PULSEBOARD_MAX_CONNECTIONS", defaultText: "\(defaults.maxConnections)",
        summary: "Open connections in all; more are closed at once.")
    package static let maxConnectionsPerAddress = Setting(
        flag: "max-connections-per-address", variable: "PULSEBOARD_MAX_CONNECTIONS_PER_ADDRESS",
        defaultText: "\(defaults.maxConnectionsPerAddress)", summary: "Open connections from one client address.")
    package static let databaseWait = Setting(
        flag: "database-wait", variable: "PULSEBOARD_DATABASE_WAIT", defaultText: "\(defaults.databaseWait.components.seconds)",
        summary: "Seconds a request waits for a PostgreSQL connection before answering 503.")
    package static let databasePoolSize = Setting(
        flag: "database-pool-size", variable: "PULSEBOARD_DATABASE_POOL_SIZE", defaultText: "\(defaults.databasePoolSize)",
        summary: "Connections one instance opens at most to PostgreSQL.")
    package static let adminEmail = Setting(
        flag: "admin-email", variable: "PULSEBOARD_ADMIN_EMAIL", defaultText: defaults.adminEmail,
        summary: "Email of the admin created on first start.")
    package static let adminPassword = Setting(
        flag: nil, variable: "PULSEBOARD_ADMIN_PASSWORD", defaultText: "generated, printed once", summary: "That admin's password.")
    package static let jwtSecret = Setting(
        flag: nil, variable: "PULSEBOARD_JWT_SECRET", defaultText: "generated into `<data-dir>/jwt-secret` (0600)",
        summary: "HS256 secret, at least 32 bytes.")
    package static let logLevel = Setting(
        flag: "log-level", variable: "PULSEBOARD_LOG_LEVEL", defaultText: "info", summary: "trace, debug, info, notice, warning, error or critical.")
    package static let logFormat = Setting(
        flag: "log-format", variable: "PULSEBOARD_LOG_FORMAT", defaultText: "auto", summary: "json or text; auto picks text on a terminal.")
    package static let behindTLS = Setting(
        flag: "behind-tls", variable: "PULSEBOARD_BEHIND_TLS", defaultText: "off", summary: "Served over HTTPS by a proxy: Secure cookies and HSTS.")
    package static let publicURL = Setting(
        flag: "public-url", variable: "PULSEBOARD_PUBLIC_URL", defaultText: "the address each request was sent to",
        summary: "This server as students reach it (https://host[:port]), for the class serverUrls it hands out.")
    package static let trustedProxies = Setting(
        flag: "trusted-proxies", variable: "PULSEBOARD_TRUSTED_PROXIES", defaultText: "none",
        summary: "Comma-separated proxy addresses or CIDR ranges whose X-Forwarded-For/-Proto and X-Real-IP are believed.")
    package static let noHostMetrics = Setting(
        flag: "no-host-metrics", variable: "PULSEBOARD_HOST_METRICS=false", defaultText: "on", summary: "Do not sample this host's metrics.")
    package static let collectInterval = Setting(
        flag: "collect-interval", variable: "PULSEBOARD_COLLECT_INTERVAL", defaultText: "\(defaults.collectInterval.components.seconds)",
        summary: "Seconds between host metric samples.")
    package static let demo = Setting(flag: "demo", variable: "PULSEBOARD_DEMO", defaultText: "off", summary: "Add synthetic sensor series.")
    package static let maxBodyBytes = Setting(
        flag: "max-body-bytes", variable: "PULSEBOARD_MAX_BODY_BYTES", defaultText: "\(defaults.maxBodyBytes)", summary: "Largest ingest body in bytes.")
    package static let maxBatchPoints = Setting(
        flag: "max-batch-points", variable: "PULSEBOARD_MAX_BATCH_POINTS", defaultText: "\(defaults.maxBatchPoints)",
        summary: "Most points in one ingest request.")
    package static let writeQueuePoints = Setting(
        flag: "write-queue-points", variable: "PULSEBOARD_WRITE_QUEUE_POINTS", defaultText: "\(defaults.writeQueuePoints)",
        summary: "Points that may wait for the writer before ingest answers 503.")
    package static let liveHistory = Setting(
        flag: "live-history", variable: "PULSEBOARD_LIVE_HISTORY", defaultText: "\(defaults.liveHistory)",
        summary: "Recent live messages kept per channel for resuming clients.")
    package static let liveHistoryBytes = Setting(
        flag: "live-history-bytes", variable: "PULSEBOARD_LIVE_HISTORY_BYTES", defaultText: "\(defaults.liveHistoryBytes)",
        summary: "Bytes of recent live messages kept per channel.")
    package static let sendQueue = Setting(
        flag: "send-queue", variable: "PULSEBOARD_SEND_QUEUE", defaultText: "\(defaults.sendQueueMessages)",
        summary: "Messages queued per WebSocket client before it is dropped.")
    package static let retentionDays = Setting(
        flag: "retention-days", variable: "PULSEBOARD_RETENTION_DAYS", defaultText: "\(defaults.retentionDays)", summary: "Days of points kept.")
    package static let requestLogDays = Setting(
        flag: "request-log-days", variable: "PULSEBOARD_REQUEST_LOG_DAYS", defaultText: "\(defaults.requestLogDays)",
        summary: "Days the request log and the task progress log are kept.")
    package static let noRequestLog = Setting(
        flag: "no-request-log", variable: "PULSEBOARD_REQUEST_LOG=false", defaultText: "on",
        summary: "Do not record requests and task steps in the database (the log lines stay).")
    package static let compactAfter = Setting(
        flag: "compact-after", variable: "PULSEBOARD_COMPACT_AFTER", defaultText: "\(defaults.compactAfter.components.seconds)",
        summary: "Seconds after its newest point before a chunk is merged into larger ones; passes run as often.")
    package static let queryMaxSamples = Setting(
        flag: "query-max-samples", variable: "PULSEBOARD_QUERY_MAX_SAMPLES", defaultText: "\(defaults.queryMaxSamples)",
        summary: "Samples one PromQL query may read before it is refused with 422.")
    package static let rateLimit = Setting(
        flag: "rate-limit", variable: "PULSEBOARD_RATE_LIMIT", defaultText: "0 (none)",
        summary: "Requests one user, ingest token, class token or else address may make per period, on each instance (429 past it).")
    package static let rateLimitPeriod = Setting(
        flag: "rate-limit-period", variable: "PULSEBOARD_RATE_LIMIT_PERIOD", defaultText: "\(defaults.rateLimitPeriod.components.seconds)",
        summary: "Seconds of the rate limit's window.")
    package static let idempotencyHours = Setting(
        flag: "idempotency-hours", variable: "PULSEBOARD_IDEMPOTENCY_HOURS", defaultText: "\(defaults.idempotencyHours)",
        summary: "Hours an Idempotency-Key is remembered (at least 24).")
    package static let accessTokenTTL = Setting(
        flag: "access-token-ttl", variable: "PULSEBOARD_ACCESS_TOKEN_TTL", defaultText: "\(defaults.accessTokenLifetime.components.seconds)",
        summary: "Lifetime of access tokens in seconds.")
    package static let sessionTTL = Setting(
        flag: "session-ttl", variable: "PULSEBOARD_SESSION_TTL", defaultText: "\(defaults.sessionLifetime.components.seconds)",
        summary: "Lifetime of browser sessions in seconds.")
    package static let bcryptCost = Setting(
        flag: "bcrypt-cost", variable: "PULSEBOARD_BCRYPT_COST", defaultText: "\(defaults.bcryptCost)", summary: "bcrypt cost, at least 10.")
    package static let openIngest = Setting(
        flag: "open-ingest", variable: "PULSEBOARD_OPEN_INGEST", defaultText: "off",
        summary: "Accept learning events without a class token, into the class with code 'open' (a local classroom only).")
    package static let idleMinutes = Setting(
        flag: "idle-minutes", variable: "PULSEBOARD_IDLE_MINUTES", defaultText: "\(defaults.idleMinutes)",
        summary: "Minutes without events before a student shows as idle.")
    package static let corsOrigins = Setting(
        flag: "cors-origins", variable: "PULSEBOARD_CORS_ORIGINS", defaultText: "none",
        summary: "Comma-separated browser origins allowed to call the API (CORS).")
    package static let submissionsDir = Setting(
        flag: "submissions-dir", variable: "PULSEBOARD_SUBMISSIONS_DIR",
        defaultText: "`<data-dir>/submissions` on SQLite; inside the database on PostgreSQL", summary: "Directory for submitted notebooks.")
    package static let enableTestAPI = Setting(
        flag: "enable-test-api", variable: "PULSEBOARD_ENABLE_TEST_API", defaultText: "off",
        summary: "Serve /api/v1/test/events, which keeps test events in memory for 10 minutes.")

    /// In the order of the README's table.
    package static let all: [Setting] = [
        host, port, dataDir, databaseURL, idleTimeout, maxConnections, maxConnectionsPerAddress, databaseWait, databasePoolSize, adminEmail, adminPassword,
        jwtSecret,
        logLevel, logFormat, behindTLS, publicURL, trustedProxies, noHostMetrics, collectInterval, demo, maxBodyBytes, maxBatchPoints, writeQueuePoints,
        liveHistory,
        liveHistoryBytes, sendQueue, retentionDays, requestLogDays, noRequestLog, compactAfter, queryMaxSamples, rateLimit, rateLimitPeriod, idempotencyHours,
        accessTokenTTL, sessionTTL,
        bcryptCost, openIngest,
        idleMinutes,
        corsOrigins,
        submissionsDir, enableTestAPI,
    ]
}
