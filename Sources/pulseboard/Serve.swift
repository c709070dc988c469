import ArgumentParser
import Foundation
import Logging
import PulseboardAccounts
import PulseboardApp
import PulseboardCourses
import PulseboardKernel

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default command).")

    @OptionGroup var data: DataOptions
    @Option(name: .setting(.host), help: .setting(.host)) var host: String?
    @Option(name: .setting(.port), help: .setting(.port)) var port: Int?
    @Option(name: .setting(.adminEmail), help: .setting(.adminEmail)) var adminEmail: String?
    @Option(name: .setting(.logLevel), help: .setting(.logLevel)) var logLevel: String?
    @Option(name: .setting(.logFormat), help: .setting(.logFormat)) var logFormat: String?
    @Flag(name: .setting(.behindTLS), help: .setting(.behindTLS)) var behindTls = false
    @Option(name: .setting(.publicURL), help: .setting(.publicURL)) var publicUrl: String?
    @Option(name: .setting(.trustedProxies), help: .setting(.trustedProxies)) var trustedProxies: String?
    @Flag(name: .setting(.noHostMetrics), help: .setting(.noHostMetrics)) var noHostMetrics = false
    @Flag(name: .setting(.demo), help: .setting(.demo)) var demo = false
    @Option(name: .setting(.collectInterval), help: .setting(.collectInterval)) var collectInterval: Double?
    @Option(name: .setting(.maxBodyBytes), help: .setting(.maxBodyBytes)) var maxBodyBytes: Int?
    @Option(name: .setting(.maxBatchPoints), help: .setting(.maxBatchPoints)) var maxBatchPoints: Int?
    @Option(name: .setting(.writeQueuePoints), help: .setting(.writeQueuePoints)) var writeQueuePoints: Int?
    @Option(name: .setting(.liveHistory), help: .setting(.liveHistory)) var liveHistory: Int?
    @Option(name: .setting(.liveHistoryBytes), help: .setting(.liveHistoryBytes)) var liveHistoryBytes: Int?
    @Option(name: .setting(.sendQueue), help: .setting(.sendQueue)) var sendQueue: Int?
    @Option(name: .setting(.retentionDays), help: .setting(.retentionDays)) var retentionDays: Int?
    @Option(name: .setting(.requestLogDays), help: .setting(.requestLogDays)) var requestLogDays: Int?
    @Flag(name: .setting(.noRequestLog), help: .setting(.noRequestLog)) var noRequestLog = false
    @Option(name: .setting(.compactAfter), help: .setting(.compactAfter)) var compactAfter: Double?
    @Option(name: .setting(.queryMaxSamples), help: .setting(.queryMaxSamples)) var queryMaxSamples: Int?
    @Option(name: .setting(.idempotencyHours), help: .setting(.idempotencyHours)) var idempotencyHours: Int?
    @Option(name: .setting(.rateLimit), help: .setting(.rateLimit)) var rateLimit: Int?
    @Option(name: .setting(.rateLimitPeriod), help: .setting(.rateLimitPeriod)) var rateLimitPeriod: Int?
    @Option(name: .setting(.accessTokenTTL), help: .setting(.accessTokenTTL)) var accessTokenTtl: Int?
    @Option(name: .setting(.sessionTTL), help: .setting(.sessionTTL)) var sessionTtl: Int?
    @Option(name: .setting(.bcryptCost), help: .setting(.bcryptCost)) var bcryptCost: Int?
    @Flag(name: .setting(.openIngest), help: .setting(.openIngest)) var openIngest = false
    @Flag(name: .setting(.enableTestAPI), help: .setting(.enableTestAPI)) var enableTestApi = false
    @Option(name: .setting(.corsOrigins), help: .setting(.corsOrigins)) var corsOrigins: String?
    @Option(name: .setting(.idleMinutes), help: .setting(.idleMinutes)) var idleMinutes: Int?
    @Option(name: .setting(.idleTimeout), help: .setting(.idleTimeout)) var idleTimeout: Int?
    @Option(name: .setting(.maxConnections), help: .setting(.maxConnections)) var maxConnections: Int?
    @Option(name: .setting(.maxConnectionsPerAddress), help: .setting(.maxConnectionsPerAddress)) var maxConnectionsPerAddress: Int?
    @Option(name: .setting(.databaseWait), help: .setting(.databaseWait)) var databaseWait: Int?
    @Option(name: .setting(.databasePoolSize), help: .setting(.databasePoolSize)) var databasePoolSize: Int?
    @Option(name: .setting(.submissionsDir), help: .setting(.submissionsDir)) var submissionsDir: String?

    func run() async throws {
        let settings = SettingReader()
        var config = try data.config()
        config.host = try settings.value(host, .host, default: config.host)
        config.port = try settings.port(port)
        config.adminEmail = try settings.value(adminEmail, .adminEmail, default: config.adminEmail)
        config.adminPassword = settings.text(.adminPassword)
        config.jwtSecret = settings.text(.jwtSecret)
        config.behindTLS = try settings.bool(behindTls, .behindTLS, default: config.behindTLS)
        config.publicURL = try (publicUrl ?? settings.text(.publicURL)).map(ServerURL.validatedBase)
        config.hostMetrics = try settings.bool(noHostMetrics, .noHostMetrics, default: config.hostMetrics)
        config.demo = try settings.bool(demo, .demo, default: config.demo)
        config.collectInterval = .milliseconds(Int(try settings.value(collectInterval, .collectInterval, default: config.collectInterval.seconds) * 1000))
        config.maxBodyBytes = try settings.value(maxBodyBytes, .maxBodyBytes, default: config.maxBodyBytes)
        config.maxBatchPoints = try settings.value(maxBatchPoints, .maxBatchPoints, default: config.maxBatchPoints)
        config.writeQueuePoints = try settings.value(writeQueuePoints, .writeQueuePoints, default: config.writeQueuePoints)
        config.liveHistory = try settings.value(liveHistory, .liveHistory, default: config.liveHistory)
        config.liveHistoryBytes = try settings.value(liveHistoryBytes, .liveHistoryBytes, default: config.liveHistoryBytes)
        config.sendQueueMessages = try settings.value(sendQueue, .sendQueue, default: config.sendQueueMessages)
        config.retentionDays = try settings.value(retentionDays, .retentionDays, default: config.retentionDays)
        config.requestLogDays = try settings.value(requestLogDays, .requestLogDays, default: config.requestLogDays)
        config.requestLog = try settings.bool(noRequestLog, .noRequestLog, default: config.requestLog)
        config.compactAfter = .milliseconds(Int(try settings.value(compactAfter, .compactAfter, default: config.compactAfter.seconds) * 1000))
        config.queryMaxSamples = try settings.value(queryMaxSamples, .queryMaxSamples, default: config.queryMaxSamples)
        config.idempotencyHours = try settings.value(idempotencyHours, .idempotencyHours, default: config.idempotencyHours)
        config.rateLimit = try settings.value(rateLimit, .rateLimit, default: config.rateLimit)
        config.rateLimitPeriod = .seconds(try settings.value(rateLimitPeriod, .rateLimitPeriod, default: Int(config.rateLimitPeriod.components.seconds)))
        config.accessTokenLifetime = .seconds(try settings.value(accessTokenTtl, .accessTokenTTL, default: Int(config.accessTokenLifetime.components.seconds)))
        config.sessionLifetime = .seconds(try settings.value(sessionTtl, .sessionTTL, default: Int(config.sessionLifetime.components.seconds)))
        config.bcryptCost = UInt8(clamping: try settings.value(bcryptCost, .bcryptCost, default: Int(config.bcryptCost)))
        config.openIngest = try settings.bool(openIngest, .openIngest, default: config.openIngest)
        config.enableTestAPI = try settings.bool(enableTestApi, .enableTestAPI, default: config.enableTestAPI)
        config.corsOrigins = try settings.list(corsOrigins, .corsOrigins)
        config.trustedProxies = try settings.list(trustedProxies, .trustedProxies)
        config.idleMinutes = try settings.value(idleMinutes, .idleMinutes, default: config.idleMinutes)
        config.databaseWait = .seconds(try settings.value(databaseWait, .databaseWait, default: Int(config.databaseWait.components.seconds)))
        config.databasePoolSize = try settings.value(databasePoolSize, .databasePoolSize, default: config.databasePoolSize)
        config.idleTimeout = .seconds(try settings.value(idleTimeout, .idleTimeout, default: Int(config.idleTimeout.components.seconds)))
        config.maxConnections = try settings.value(maxConnections, .maxConnections, default: config.maxConnections)
        config.maxConnectionsPerAddress = try settings.value(
            maxConnectionsPerAddress, .maxConnectionsPerAddress, default: config.maxConnectionsPerAddress)
        config.submissionsDirectory = submissionsDir ?? settings.text(.submissionsDir)
        guard config.bcryptCost >= PasswordHasher.minimumCost else { throw ValidationError("The bcrypt cost is at least \(PasswordHasher.minimumCost).") }
        guard config.databaseWait >= .seconds(1) else { throw ValidationError("The database wait is at least 1 second.") }
        guard config.rateLimit >= 0, config.rateLimitPeriod >= .seconds(1) else {
            throw ValidationError("The rate limit is 0 (none) or more, its period at least 1 second.")
        }
        guard config.databasePoolSize >= 2 else { throw ValidationError("The database pool has at least 2 connections.") }
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

    private func bootstrapLogging(_ settings: SettingReader) throws -> Logger {
        let levelName = try settings.value(logLevel, .logLevel, default: Setting.logLevel.defaultText)
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("Unknown log level \(levelName).") }
        let format = try settings.value(logFormat, .logFormat, default: Setting.logFormat.defaultText)
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
