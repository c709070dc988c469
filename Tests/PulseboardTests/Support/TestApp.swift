import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import PulseboardApp
@testable import PulseboardDatabase
@testable import PulseboardKernel
@testable import PulseboardLive
@testable import PulseboardMetrics
@testable import PulseboardTracing

/// A Pulseboard on its own temporary SQLite database, with a known admin.
enum TestApp {
    static let adminEmail = "admin@example.com"
    static let adminPassword = "admin-password-1"

    static func config(_ configure: (inout ServerConfig) -> Void = { _ in }) -> ServerConfig {
        var config = ServerConfig()
        config.dataDirectory =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("pulseboard-tests/\(UUID().uuidString)").path
        config.port = 0
        config.adminPassword = adminPassword
        config.jwtSecret = "test-secret-that-is-at-least-32-bytes-long"
        // bcrypt's lowest cost: every test makes accounts, and all of them start at once on 2 cores.
        config.bcryptCost = 4
        config.hostMetrics = false
        // Many tests open PostgreSQL connections at once on 2 cores; only the outage test needs
        // the production wait of 2 s.
        config.databaseWait = .seconds(15)
        configure(&config)
        return config
    }

    static var logger: Logger {
        var logger = Logger(label: "pulseboard-test")
        logger.logLevel = .warning
        return logger
    }

    /// Builds an app, runs `test` against it (in-process router, or a live server on a free port),
    /// and removes its data folder afterwards.
    static func run(
        engine: TestEngine = .sqlite,
        _ framework: TestingSetup = .router,
        configure: (inout ServerConfig) -> Void = { _ in },
        logger: Logger = TestApp.logger,
        _ test: @Sendable (any TestClientProtocol, Parts) async throws -> Void
    ) async throws {
        try await Checkpoints.track("making a database") {
            var config = config(configure)
            if engine == .postgres && config.databaseURL == nil {
                config.databaseURL = try await TestPostgres.shared.newDatabase()
            }
            defer { try? FileManager.default.removeItem(atPath: config.dataDirectory) }
            Checkpoints.reached("building the app")
            let pulseboard = try await Pulseboard.build(config, logger: logger)
            let parts = Parts(
                store: pulseboard.store, metrics: pulseboard.metrics, hub: pulseboard.hub, telemetry: pulseboard.telemetry,
                operationsLog: pulseboard.operationsLog, config: config)
            Checkpoints.reached("starting the app")
            try await pulseboard.application.test(framework) { client in
                Checkpoints.reached("the test's body")
                try await test(client, parts)
                Checkpoints.reached("stopping the app")
            }
        }
    }

    /// The parts of a running app that tests look into.
    struct Parts: Sendable {
        var store: any Database
        var metrics: any MetricsStore
        var hub: Hub
        var telemetry: Telemetry
        var operationsLog: OperationsLog?
        var config: ServerConfig
    }
}

struct TokenPair: Decodable {
    var accessToken: String
    var tokenType: String
    var expiresIn: Int
    var refreshToken: String
}

struct CreatedToken: Decodable {
    var id: Int64
    var token: String
}

struct ErrorBody: Decodable {
    struct Detail: Decodable {
        var code: String
        var message: String
        var index: Int?
        var field: String?
    }

    var error: Detail
}

extension TestClientProtocol {
    @discardableResult
    func request(
        _ method: HTTPRequest.Method,
        _ uri: String,
        token: String? = nil,
        json: String? = nil,
        headers: HTTPFields = [:],
        body: String? = nil
    ) async throws -> TestResponse {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil { headers[.contentType] = "application/json" }
        return try await executeRequest(uri: uri, method: method, headers: headers, body: (json ?? body).map { ByteBuffer(string: $0) })
    }

    func login(_ email: String = TestApp.adminEmail, _ password: String = TestApp.adminPassword) async throws -> TokenPair {
        let response = try await request(.post, "/auth/login", json: #"{"email":"\#(email)","password":"\#(password)"}"#)
        try #require(response.status == .ok, "login failed: \(String(buffer: response.body))")
        return try response.decode(TokenPair.self)
    }

    /// Creates a user through the API and returns an access token of theirs.
    func tokenForNewUser(role: Role, adminToken: String, email: String? = nil) async throws -> String {
        let email = email ?? "\(role.rawValue)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let created = try await request(
            .post,
            "/api/v1/users",
            token: adminToken,
            json: #"{"email":"\#(email)","password":"password-123","role":"\#(role.rawValue)"}"#
        )
        try #require(created.status == .created)
        return try await login(email, "password-123").accessToken
    }

    /// Creates an ingest token through the API.
    func ingestToken(adminToken: String, name: String = "agent") async throws -> CreatedToken {
        let created = try await request(.post, "/api/v1/tokens", token: adminToken, json: #"{"name":"\#(name)"}"#)
        try #require(created.status == .created)
        return try created.decode(CreatedToken.self)
    }

    func ingest(_ json: String, token: String, idempotencyKey: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
        return try await request(.post, "/api/v1/metrics", token: token, json: json, headers: headers)
    }
}

extension TestResponse {
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }

    var error: ErrorBody.Detail? {
        try? decode(ErrorBody.self).error
    }

    var text: String { String(buffer: body) }
}

/// A JSON value of which a test only wants the strings and numbers.
struct AnyCodable: Decodable {
    var string: String?
    var number: Double?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        string = try? container.decode(String.self)
        number = try? container.decode(Double.self)
    }
}

extension RowsOnce {
    /// What the writer runs for these rows when none of them is stored yet: the rows, and their
    /// keys in the pending table.
    var statementsAsNew: [SQLStatement] { statements(rowsPerStatement: 2_000) + pendingStatements(newRows: Array(rows.indices), rowsPerStatement: 2_000) }
}
