import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import Mustache
import NIOCore
import ServiceLifecycle

/// The assembled server: storage, writer, hub, collector and routes, built from a configuration
/// by constructor injection. `application` runs everything under ServiceLifecycle.
public struct Pulseboard: Sendable {
    public let application: Application<RouterResponder<AppRequestContext>>
    public let store: any Store
    public let hub: Hub
    public let telemetry: Telemetry
    /// The admin password when this start created the admin with a generated one (print it once).
    public let generatedAdminPassword: String?
    let routes: [RecordingRouter.Route]

    public static func build(_ config: ServerConfig, logger: Logger) async throws -> Pulseboard {
        try Bootstrap.prepareDataDirectory(config.dataDirectory)
        let store = try StoreFactory.open(config, logger: logger)
        let hasher = PasswordHasher(cost: config.bcryptCost)
        // Migrations, the JWT secret and the first admin, on a store of their own (a connection
        // pool runs once).
        let (secret, generatedPassword, openClassID) = try await StoreFactory.open(config, logger: logger).whileRunning { setup in
            try await setup.migrate()
            let secret = try await Bootstrap.jwtSecret(configured: config.jwtSecret, dataDirectory: config.dataDirectory, store: setup)
            let password = try await Bootstrap.ensureAdmin(store: setup, hasher: hasher, email: config.adminEmail, password: config.adminPassword)
            let openClass = config.openIngest ? try await Classes(store: setup).ensureOpenClass(now: Date()) : nil
            return (secret, password, openClass?.id)
        }

        let telemetry = Telemetry()
        let hub = Hub(ringCapacity: config.liveHistory, ringBytes: config.liveHistoryBytes)
        let classes = Classes(store: store)
        let submissions = Submissions(store: store, files: config.notebookFiles)
        let progress = ClassProgress(store: store, idleAfter: .seconds(config.idleMinutes * 60))
        let accessChanges = AccessChanges()
        let fanout = (store as? PostgresStore).map {
            PostgresFanout(store: $0, hub: hub, progress: progress, telemetry: telemetry, accessChanges: accessChanges, logger: logger)
        }
        let accessChanged: @Sendable () -> Void = {
            accessChanges.signal()
            fanout?.relayAccessChanged()
        }
        let auth = try await AuthService(
            store: store,
            accessTokens: try await AccessTokens(secret: secret, lifetime: config.accessTokenLifetime),
            hasher: hasher,
            limiter: LoginLimiter(limits: config.loginLimits),
            refreshLifetime: config.refreshTokenLifetime,
            sessionLifetime: config.sessionLifetime,
            accessChanged: accessChanged
        )
        let notifier = Notifier(hub: hub) { channel, notice in fanout?.relay(notice, on: channel) }
        let cardsChanged: @Sendable ([Int64: Set<String>]) -> Void = { fanout?.cardsChanged($0) }
        let processor = EventProcessor(store: store, hub: hub, progress: progress, telemetry: telemetry, logger: logger, cardsChanged: cardsChanged)
        let writer = Writer(
            store: store, hub: hub, telemetry: telemetry, logger: logger, capacity: config.writeQueuePoints,
            eventsCommitted: { processor.eventsCommitted($0) })
        var services: [any Service] = [
            store,
            // Before the writer: services stop in reverse order, so the writer drains first.
            processor,
            writer,
            MaintenanceService(
                store: store,
                retention: .seconds(config.retentionDays * 86_400),
                idempotencyLifetime: .seconds(config.idempotencyHours * 3600),
                submissions: submissions,
                logger: logger
            ),
        ]
        if let fanout { services.append(fanout) }
        services.append(FreedMemoryReturner(telemetry: telemetry, logger: logger))
        if config.hostMetrics {
            // With several instances on one database, each one's host series carry its name.
            let tags = config.databaseURL == nil ? [:] : ["instance": "\(ProcessInfo.processInfo.hostName):\(config.port)"]
            services.append(
                HostCollector(writer: writer, telemetry: telemetry, interval: config.collectInterval, demo: config.demo, tags: tags, logger: logger)
            )
        }

        let router = Router(context: AppRequestContext.self)
        router.add(middleware: RequestTelemetryMiddleware(telemetry: telemetry))
        router.add(middleware: SecurityHeadersMiddleware(behindTLS: config.behindTLS))
        if !config.corsOrigins.isEmpty { router.add(middleware: ListedOriginsMiddleware(origins: Set(config.corsOrigins))) }
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthMiddleware(auth: auth, listedOrigins: Set(config.corsOrigins)))
        let routes = RecordingRouter(router)
        OperationsController(store: store, telemetry: telemetry, openAPIDocument: try OpenAPIDocument.load()).addRoutes(to: routes)
        AuthController(auth: auth).addRoutes(to: routes)
        UsersController(store: store, hasher: hasher, accessChanged: accessChanged).addRoutes(to: routes)
        TokensController(auth: auth).addRoutes(to: routes)
        IngestController(writer: writer, limits: .init(maxBodyBytes: config.maxBodyBytes, maxPoints: config.maxBatchPoints)).addRoutes(to: routes)
        HistoryController(store: store).addRoutes(to: routes)
        EventsController(
            writer: writer, classes: classes, telemetry: telemetry, maxBodyBytes: config.maxBodyBytes, openClassID: openClassID,
            testEvents: config.enableTestAPI ? TestEvents() : nil
        ).addRoutes(to: routes)
        ClassesController(classes: classes, enrolment: Enrolment(store: store), progress: progress, hub: hub, accessChanged: accessChanged)
            .addRoutes(to: routes)
        let assignments = Assignments(store: store)
        AssignmentsController(assignments: assignments, classes: classes).addRoutes(to: routes)
        SubmissionsController(submissions: submissions, assignments: assignments, classes: classes, notifier: notifier, cardsChanged: cardsChanged)
            .addRoutes(to: routes)
        AuditTrail(store: store).addRoutes(to: routes)
        BroadcastController(notifier: notifier).addRoutes(to: routes)
        LiveController(
            session: LiveSession(
                hub: hub,
                auth: auth,
                policy: ChannelPolicy(classes: classes),
                accessChanges: accessChanges,
                telemetry: telemetry,
                settings: .init(sendQueueCapacity: config.sendQueueMessages, authTimeout: .seconds(10))
            )
        ).addRoutes(to: routes)
        WebController(
            auth: auth,
            classes: classes,
            assignments: assignments,
            idleMinutes: config.idleMinutes,
            templates: try await MustacheLibrary(directory: try Resources.url("templates").path),
            assets: try StaticAssets(directory: try Resources.url("static")),
            secureCookies: config.behindTLS
        ).addRoutes(to: routes)

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
            hub: hub,
            telemetry: telemetry,
            generatedAdminPassword: generatedPassword, routes: routes.routes)
    }

    /// HTTP/1.1 with WebSocket upgrades, behind the connection guard.
    private static func server(router: Router<AppRequestContext>, config: ServerConfig, connections: ConnectionCounter) -> HTTPServerBuilder {
        let webSocketResponder = router.buildResponder()
        let idleTimeout = TimeAmount.nanoseconds(Int64(config.idleTimeout.seconds * 1e9))
        return HTTPServerBuilder { responder in
            GuardedChildChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    webSocketResponder: webSocketResponder,
                    configuration: .init(
                        http1: .init(idleTimeout: idleTimeout), ws: .init(maxFrameSize: 1 << 16, autoPing: .enabled(timePeriod: .seconds(30))))
                ),
                counter: connections,
                headTimeout: idleTimeout
            )
        }
    }
}
