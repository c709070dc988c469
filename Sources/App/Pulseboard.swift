import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Mustache
import NIOCore
import PulseboardAccounts
import PulseboardClassroom
import PulseboardCourses
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel
import PulseboardLive
import PulseboardMetrics
import PulseboardPromQL
import PulseboardTracing
import PulseboardWeb
import ServiceLifecycle

/// The assembled server: storage, writer, hub, collector and routes, built from a configuration
/// by constructor injection. `application` runs everything under ServiceLifecycle.
public struct Pulseboard: Sendable {
    public let application: Application<RouterResponder<AppRequestContext>>
    public let store: any Database
    package let metrics: any MetricsStore
    public let hub: Hub
    public let telemetry: Telemetry
    /// The request and task logs' writer; nil with `--no-request-log`.
    package let operationsLog: OperationsLog?
    /// The admin password when this start created the admin with a generated one (print it once).
    public let generatedAdminPassword: String?
    let routes: [RecordingRouter.Route]

    /// Tells the servers that share `store` that someone's access changed: for the command
    /// line's changes, which no server made (see `AccessChanges.announce`).
    public static func announceAccessChange(in store: any Database) async throws {
        try await AccessChanges.announce(in: store)
    }

    public static func build(_ config: ServerConfig, logger: Logger) async throws -> Pulseboard {
        try Bootstrap.prepareDataDirectory(config.dataDirectory)
        let instanceID = UUID().uuidString.lowercased()
        let (store, metrics) = try Storage.open(config, instanceID: instanceID, logger: logger)
        let hasher = PasswordHasher(cost: config.bcryptCost)
        // Migrations, the JWT secret and the first admin, on a database of their own (a
        // connection pool runs once). At start the database may still be starting too (or, on a
        // loaded machine, slow to take a first connection): wait longer than a request would.
        var startup = config
        startup.databaseWait = max(config.databaseWait, Self.startupDatabaseWait)
        let (secret, generatedPassword, openClassID) = try await Storage.open(startup, logger: logger)
            .whileRunning { setup in
                try await setup.migrate(Migrations.all)
                let secret = try await Bootstrap.jwtSecret(configured: config.jwtSecret, dataDirectory: config.dataDirectory, store: setup)
                let password = try await Bootstrap.ensureAdmin(store: setup, hasher: hasher, email: config.adminEmail, password: config.adminPassword)
                let openClass = config.openIngest ? try await Classes(store: setup).ensureOpenClass(now: Date()) : nil
                return (secret, password, openClass?.id)
            }

        let telemetry = Telemetry()
        let operationsLog = config.requestLog ? OperationsLog(store: store, telemetry: telemetry, logger: logger) : nil
        let hub = Hub(ringCapacity: config.liveHistory, ringBytes: config.liveHistoryBytes)
        // With several instances on one database, live data travels between them.
        let relay = store.notifications.map { InstanceRelay(store: store, notifications: $0, instanceID: instanceID, telemetry: telemetry, logger: logger) }
        let classes = Classes(store: store)
        let submissions = Submissions(store: store, files: config.notebookFiles)
        let progress = ClassProgress(store: store, idleAfter: .seconds(config.idleMinutes * 60))
        let accessChanges = AccessChanges(relay: relay)
        let accessChanged: @Sendable () -> Void = { accessChanges.changed() }
        let recentUsers = RecentUsers(lifetime: config.userCheckCacheLifetime)
        _ = accessChanges.watch { recentUsers.forgetAll() }
        let auth = try await AuthService(
            store: store,
            accessTokens: try await AccessTokens(secret: secret, lifetime: config.accessTokenLifetime),
            hasher: hasher,
            limiter: LoginLimiter(limits: config.loginLimits),
            refreshLifetime: config.refreshTokenLifetime,
            sessionLifetime: config.sessionLifetime,
            recentUsers: recentUsers,
            accessChanged: accessChanged
        )
        let notifier = Notifier(hub: hub, relay: relay)
        let classChannel = ClassChannel(hub: hub, progress: progress, relay: relay, telemetry: telemetry, logger: logger)
        let processor = EventProcessor(
            store: store, telemetry: telemetry, logger: logger, channel: classChannel, log: operationsLog)
        let stray = StrayEvents(store: store, telemetry: telemetry, bounds: config.strayEventBounds)
        let writer = Writer(store: metrics, hub: hub, telemetry: telemetry, logger: logger, capacity: config.writeQueuePoints)
        let retention = Duration.seconds(config.retentionDays * 86_400)
        let idempotencyLifetime = Duration.seconds(config.idempotencyHours * 3600)
        let compactAfter = config.compactAfter
        let requestLogDays = Duration.seconds(config.requestLogDays * 86_400)
        let optionalServices: [(any Service)?] = [
            store,
            // Stopped after the services that record into it (services stop in reverse order).
            operationsLog,
            // Before the writer: services stop in reverse order, so the writer drains first.
            processor,
            writer,
            MaintenanceService(
                chores: [
                    .init(name: "metrics retention") { now in
                        try await metrics.prune(
                            pointsBefore: now.addingTimeInterval(-retention.seconds),
                            idempotencyKeysBefore: now.addingTimeInterval(-idempotencyLifetime.seconds), now: now)
                        return nil
                    },
                    .init(name: "request and task log retention") { now in
                        try await store.transaction(OperationsLog.prune(before: now.addingTimeInterval(-requestLogDays.seconds)))
                        return nil
                    },
                    .init(name: "expired sessions") { now in
                        try await Accounts(store: store).deleteExpiredSessions(now: now)
                        return nil
                    },
                    .init(name: "submission files") { now in
                        try await submissions.sweepFiles(now: now)
                        return nil
                    },
                ],
                interval: .seconds(3600),
                log: operationsLog,
                logger: logger
            ),
            MaintenanceService(
                chores: [
                    .init(name: "chunk compaction") { now in
                        let merged = try await metrics.compactChunks(closedBefore: now.addingTimeInterval(-compactAfter.seconds))
                        let sizes = try await metrics.storedSizes().values
                        let points = sizes.reduce(0) { $0 + $1.points }
                        let chunks = sizes.reduce(0) { $0 + $1.chunks }
                        telemetry.recordStorage(points: points, bytes: sizes.reduce(0) { $0 + $1.bytes }, chunks: chunks)
                        return ["chunksMerged": .integer(Int64(merged)), "storedChunks": .integer(chunks), "storedPoints": .integer(points)]
                    }
                ],
                interval: compactAfter,
                log: operationsLog,
                logger: logger
            ),
        ]
        var services = optionalServices.compactMap { $0 }
        if let relay {
            services.append(relay)
            if let log = metrics.liveLog { services.append(PointRelay(log: log, relay: relay, hub: hub, logger: logger)) }
        }
        services.append(FreedMemoryReturner(telemetry: telemetry, logger: logger))
        let sockets = OpenSockets()
        services.append(sockets)
        if config.hostMetrics {
            // With several instances on one database, each one's host series carry its name.
            let tags = config.databaseURL == nil ? [:] : ["instance": "\(ProcessInfo.processInfo.hostName):\(config.port)"]
            services.append(
                HostCollector(writer: writer, telemetry: telemetry, interval: config.collectInterval, demo: config.demo, tags: tags, logger: logger)
            )
        }

        let router = Router(context: AppRequestContext.self)
        let proxies: TrustedProxies
        do {
            proxies = try TrustedProxies(parsing: config.trustedProxies)
        } catch {
            throw ConfigurationError("--trusted-proxies: \(error)")
        }
        if !proxies.isEmpty { router.add(middleware: ForwardedClientMiddleware(proxies: proxies)) }
        router.add(middleware: RequestTelemetryMiddleware(telemetry: telemetry, requestLog: operationsLog))
        router.add(middleware: SecurityHeadersMiddleware(behindTLS: config.behindTLS))
        if !config.corsOrigins.isEmpty { router.add(middleware: ListedOriginsMiddleware(origins: Set(config.corsOrigins))) }
        router.add(middleware: ErrorMiddleware())
        let openAPI = try OpenAPIDocument.object()
        router.add(middleware: QueryParameterCheck(document: openAPI))
        router.add(middleware: try WebController.staticFiles())
        router.add(middleware: AuthMiddleware(auth: auth, listedOrigins: Set(config.corsOrigins)))
        if config.rateLimit > 0 {
            router.add(middleware: RateLimitMiddleware(limiter: RateLimiter(limit: .init(requests: config.rateLimit, period: config.rateLimitPeriod))))
        }
        let assignments = Assignments(store: store)
        let session = LiveSession(
            hub: hub,
            auth: auth,
            policy: ChannelPolicy([MetricsChannels.rule] + LearningChannels.rules(classes: classes)),
            accessChanges: accessChanges,
            telemetry: telemetry,
            sockets: sockets,
            settings: .init(sendQueueCapacity: config.sendQueueMessages, authTimeout: .seconds(10))
        )
        let templates = try await WebController.loadTemplates()
        let routes = RecordingRouter(router)
        routes.recordMiddlewarePath("/static/{file}")
        routes.addRoutes(OperationsController(store: store, telemetry: telemetry, openAPIDocument: try OpenAPIDocument.json(openAPI)).routes)
        routes.addRoutes(AuthController(auth: auth).routes, atPath: "/auth")
        let ingestLimits = IngestController.Limits(maxBodyBytes: config.maxBodyBytes, maxPoints: config.maxBatchPoints)
        let api = [
            UsersController(store: store, hasher: hasher, accessChanged: accessChanged).routes,
            TokensController(auth: auth).routes,
            IngestController(writer: writer, limits: ingestLimits).routes,
            HistoryController(store: metrics).routes,
            EventsController(
                writer: writer, processor: processor, classes: classes, telemetry: telemetry, maxBodyBytes: config.maxBodyBytes,
                openClassID: openClassID, testEvents: config.enableTestAPI ? TestEvents() : nil, log: operationsLog,
                stray: stray
            ).routes,
            ClassesController(
                classes: classes, enrolment: Enrolment(store: store), publicURL: config.publicURL, behindTLS: config.behindTLS, log: operationsLog,
                accessChanged: accessChanged
            ).routes,
            ClassroomController(classes: classes, progress: progress, channel: classChannel).routes,
            AssignmentsController(assignments: assignments, classes: classes).routes,
            SubmissionsController(submissions: submissions, assignments: assignments, classes: classes, notifier: notifier, log: operationsLog) {
                submission, classID, email in
                classChannel.submissionReceived(submission, classID: classID, email: email)
            }.routes,
            AuditTrail(store: store).routes,
            LogsController(reader: OperationsLogReader(store: store)).routes,
            StrayEventsController(stray: stray, classes: classes, writer: writer, processor: processor).routes,
            BroadcastController(notifier: notifier).routes,
        ]
        for collection in api { routes.addRoutes(collection, atPath: "/api/v1") }
        // The protocols of the agents operators already run, at the paths those agents use.
        routes.addRoutes(InfluxController(writer: writer, auth: auth, limits: ingestLimits).routes)
        routes.addRoutes(RemoteWriteController(writer: writer, telemetry: telemetry, limits: ingestLimits).routes)
        var queryEngine = QueryEngine()
        queryEngine.sampleLimit = config.queryMaxSamples
        routes.addRoutes(
            PrometheusController(sources: [StoredMetricsSource(store: metrics), ClassSeriesSource(classes: classes, store: store)], engine: queryEngine).routes)
        routes.addRoutes(LiveController(session: session).routes)
        routes.addRoutes(MetricsSocketController(session: session).routes)
        routes.addRoutes(
            WebController(
                auth: auth, classes: classes, assignments: assignments, idleMinutes: config.idleMinutes, templates: templates,
                secureCookies: config.behindTLS
            ).routes)

        let connections = ConnectionCounter(maxTotal: config.maxConnections, maxPerAddress: config.maxConnectionsPerAddress)
        let application = Application(
            router: router,
            server: Self.server(router: router, config: config, connections: connections),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "Pulseboard"),
            services: services,
            logger: logger
        )
        return Pulseboard(
            application: application,
            store: store,
            metrics: metrics,
            hub: hub,
            telemetry: telemetry,
            operationsLog: operationsLog,
            generatedAdminPassword: generatedPassword, routes: routes.routes)
    }

    /// How long the start waits for a PostgreSQL connection before it gives up.
    static let startupDatabaseWait: Duration = .seconds(30)

    /// The slowest a request body may arrive, averaged over each `--idle-timeout` window.
    static let minimumBodyBytesPerSecond = 1024

    /// HTTP/1.1 with WebSocket upgrades, behind the connection guard.
    private static func server(router: Router<AppRequestContext>, config: ServerConfig, connections: ConnectionCounter) -> HTTPServerBuilder {
        let webSocketResponder = router.buildResponder()
        let idleTimeout = TimeAmount.nanoseconds(Int64(config.idleTimeout.seconds * 1e9))
        return HTTPServerBuilder { responder in
            GuardedChildChannel(
                inner: WebSocketUpgradeChannel(
                    responder: responder,
                    webSocketResponder: webSocketResponder,
                    http1: .init(
                        additionalChannelHandlers: [RequestBodyPace(window: idleTimeout, minimumBytesPerSecond: minimumBodyBytesPerSecond)],
                        idleTimeout: idleTimeout),
                    maxFrameSize: 1 << 16
                ),
                counter: connections,
                headTimeout: idleTimeout
            )
        }
    }
}
