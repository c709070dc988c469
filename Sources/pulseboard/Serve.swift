import ArgumentParser
import Foundation
import Logging
import PulseboardApp
import PulseboardClassroom
import PulseboardKernel

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default command).")

    @OptionGroup var data: DataOptions
    @Option(help: "Address to listen on. [env PULSEBOARD_HOST, default 127.0.0.1]") var host: String?
    @Option(help: "Port to listen on. [env PULSEBOARD_PORT, default 8080]") var port: Int?
    @Option(help: "Email of the admin created on first start. [env PULSEBOARD_ADMIN_EMAIL, default admin@example.com]") var adminEmail: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical. [env PULSEBOARD_LOG_LEVEL, default info]") var logLevel: String?
    @Option(help: "json or text; auto picks text on a terminal. [env PULSEBOARD_LOG_FORMAT, default auto]") var logFormat: String?
    @Flag(help: "Served over HTTPS by a proxy: Secure cookies and HSTS. [env PULSEBOARD_BEHIND_TLS, default false]") var behindTls = false
    @Flag(help: "Do not sample this host's metrics. [env PULSEBOARD_HOST_METRICS=false]") var noHostMetrics = false
    @Flag(help: "Add synthetic sensor series. [env PULSEBOARD_DEMO, default false]") var demo = false
    @Option(help: "Seconds between host metric samples. [env PULSEBOARD_COLLECT_INTERVAL, default 1]") var collectInterval: Double?
    @Option(help: "Largest request body in bytes. [env PULSEBOARD_MAX_BODY_BYTES, default 10485760]") var maxBodyBytes: Int?
    @Option(help: "Most points in one ingest request. [env PULSEBOARD_MAX_BATCH_POINTS, default 10000]") var maxBatchPoints: Int?
    @Option(help: "Points that may wait for the writer before ingest answers 503. [env PULSEBOARD_WRITE_QUEUE_POINTS, default 200000]")
    var writeQueuePoints: Int?
    @Option(help: "Recent live messages kept per channel for resuming clients. [env PULSEBOARD_LIVE_HISTORY, default 256]") var liveHistory: Int?
    @Option(help: "Bytes of recent live messages kept per channel. [env PULSEBOARD_LIVE_HISTORY_BYTES, default 4194304]")
    var liveHistoryBytes: Int?
    @Option(help: "Messages queued per WebSocket client before it is dropped. [env PULSEBOARD_SEND_QUEUE, default 1024]") var sendQueue: Int?
    @Option(help: "Days of points kept. [env PULSEBOARD_RETENTION_DAYS, default 30]") var retentionDays: Int?
    @Option(help: "Hours an Idempotency-Key is remembered. [env PULSEBOARD_IDEMPOTENCY_HOURS, default 24]") var idempotencyHours: Int?
    @Option(help: "Lifetime of access tokens in seconds. [env PULSEBOARD_ACCESS_TOKEN_TTL, default 900]") var accessTokenTtl: Int?
    @Option(help: "Lifetime of browser sessions in seconds. [env PULSEBOARD_SESSION_TTL, default 43200]") var sessionTtl: Int?
    @Option(help: "bcrypt cost, at least 10. [env PULSEBOARD_BCRYPT_COST, default 12]") var bcryptCost: Int?
    @Flag(
        help:
            "Accept learning events without a class token, into the class with code 'open' (a local classroom only). [env PULSEBOARD_OPEN_INGEST, default false]"
    )
    var openIngest = false
    @Flag(help: "Serve /api/v1/test/events, which keeps test events in memory for 10 minutes. [env PULSEBOARD_ENABLE_TEST_API, default false]")
    var enableTestApi = false
    @Option(help: "Comma-separated browser origins allowed to call the API (CORS). [env PULSEBOARD_CORS_ORIGINS, default none]") var corsOrigins: String?
    @Option(help: "Minutes without events before a student shows as idle. [env PULSEBOARD_IDLE_MINUTES, default 5]") var idleMinutes: Int?
    @Option(help: "Seconds an HTTP connection may wait for a complete request head before it is closed. [env PULSEBOARD_IDLE_TIMEOUT, default 30]")
    var idleTimeout: Int?
    @Option(help: "Open connections in all; more are closed at once. [env PULSEBOARD_MAX_CONNECTIONS, default 16384]") var maxConnections: Int?
    @Option(help: "Open connections from one client address. [env PULSEBOARD_MAX_CONNECTIONS_PER_ADDRESS, default 2048]")
    var maxConnectionsPerAddress: Int?
    @Option(help: "Seconds a request waits for a PostgreSQL connection before answering 503. [env PULSEBOARD_DATABASE_WAIT, default 2]")
    var databaseWait: Int?
    @Option(
        help:
            "Directory for submitted notebooks (shared by every instance). [env PULSEBOARD_SUBMISSIONS_DIR, default <data>/submissions with SQLite, inside PostgreSQL with a database URL]"
    )
    var submissionsDir: String?

    func run() async throws {
        let settings = Settings()
        var config = try data.config()
        config.host = try settings.value(host, "PULSEBOARD_HOST", default: config.host)
        config.port = try settings.value(port, "PULSEBOARD_PORT", default: config.port)
        config.adminEmail = try settings.value(adminEmail, "PULSEBOARD_ADMIN_EMAIL", default: config.adminEmail)
        config.adminPassword = settings.secret("PULSEBOARD_ADMIN_PASSWORD")
        config.jwtSecret = settings.secret("PULSEBOARD_JWT_SECRET")
        config.behindTLS = try settings.bool(behindTls, "PULSEBOARD_BEHIND_TLS", default: false)
        config.hostMetrics = try settings.bool(noHostMetrics, "PULSEBOARD_HOST_METRICS", default: true)
        config.demo = try settings.bool(demo, "PULSEBOARD_DEMO", default: false)
        config.collectInterval = .milliseconds(Int(try settings.value(collectInterval, "PULSEBOARD_COLLECT_INTERVAL", default: 1.0) * 1000))
        config.maxBodyBytes = try settings.value(maxBodyBytes, "PULSEBOARD_MAX_BODY_BYTES", default: config.maxBodyBytes)
        config.maxBatchPoints = try settings.value(maxBatchPoints, "PULSEBOARD_MAX_BATCH_POINTS", default: config.maxBatchPoints)
        config.writeQueuePoints = try settings.value(writeQueuePoints, "PULSEBOARD_WRITE_QUEUE_POINTS", default: config.writeQueuePoints)
        config.liveHistory = try settings.value(liveHistory, "PULSEBOARD_LIVE_HISTORY", default: config.liveHistory)
        config.liveHistoryBytes = try settings.value(liveHistoryBytes, "PULSEBOARD_LIVE_HISTORY_BYTES", default: config.liveHistoryBytes)
        config.sendQueueMessages = try settings.value(sendQueue, "PULSEBOARD_SEND_QUEUE", default: config.sendQueueMessages)
        config.retentionDays = try settings.value(retentionDays, "PULSEBOARD_RETENTION_DAYS", default: config.retentionDays)
        config.idempotencyHours = try settings.value(idempotencyHours, "PULSEBOARD_IDEMPOTENCY_HOURS", default: config.idempotencyHours)
        config.accessTokenLifetime = .seconds(try settings.value(accessTokenTtl, "PULSEBOARD_ACCESS_TOKEN_TTL", default: 900))
        config.sessionLifetime = .seconds(try settings.value(sessionTtl, "PULSEBOARD_SESSION_TTL", default: 43_200))
        config.bcryptCost = UInt8(clamping: try settings.value(bcryptCost, "PULSEBOARD_BCRYPT_COST", default: Int(config.bcryptCost)))
        config.openIngest = try settings.bool(openIngest, "PULSEBOARD_OPEN_INGEST", default: false)
        config.enableTestAPI = try settings.bool(enableTestApi, "PULSEBOARD_ENABLE_TEST_API", default: false)
        config.corsOrigins = try settings.value(corsOrigins, "PULSEBOARD_CORS_ORIGINS", default: "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        config.idleMinutes = try settings.value(idleMinutes, "PULSEBOARD_IDLE_MINUTES", default: config.idleMinutes)
        config.databaseWait = .seconds(try settings.value(databaseWait, "PULSEBOARD_DATABASE_WAIT", default: 2))
        config.idleTimeout = .seconds(try settings.value(idleTimeout, "PULSEBOARD_IDLE_TIMEOUT", default: 30))
        config.maxConnections = try settings.value(maxConnections, "PULSEBOARD_MAX_CONNECTIONS", default: config.maxConnections)
        config.maxConnectionsPerAddress = try settings.value(
            maxConnectionsPerAddress, "PULSEBOARD_MAX_CONNECTIONS_PER_ADDRESS", default: config.maxConnectionsPerAddress)
        config.submissionsDirectory = submissionsDir ?? settings.secret("PULSEBOARD_SUBMISSIONS_DIR")
        guard config.bcryptCost >= 10 else { throw ValidationError("The bcrypt cost is at least 10.") }
        guard config.databaseWait >= .seconds(1) else { throw ValidationError("The database wait is at least 1 second.") }
        guard config.idempotencyHours >= 24 else { throw ValidationError("Idempotency keys are kept at least 24 hours.") }

        let logger = try bootstrapLogging(settings)
        let pulseboard: Pulseboard
        do {
            pulseboard = try await Pulseboard.build(config, logger: logger)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        if let password = pulseboard.generatedAdminPassword {
            print(
                """
                Created the admin account (shown once, change it after logging in):
                  email:    \(config.adminEmail)
                  password: \(password)
                """
            )
        }
        let storage = config.databaseURL == nil ? "SQLite in \(config.dataDirectory)" : "PostgreSQL"
        print("Pulseboard listens on http://\(config.host):\(config.port) (\(storage))")
        try await pulseboard.application.runService()
    }

    private func bootstrapLogging(_ settings: Settings) throws -> Logger {
        let levelName = try settings.value(logLevel, "PULSEBOARD_LOG_LEVEL", default: "info")
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("Unknown log level \(levelName).") }
        let format = try settings.value(logFormat, "PULSEBOARD_LOG_FORMAT", default: "auto")
        let json: Bool
        switch format {
        case "json": json = true
        case "text": json = false
        case "auto": json = isatty(STDOUT_FILENO) == 0
        default: throw ValidationError("The log format is json, text or auto.")
        }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "pulseboard")
    }
}
