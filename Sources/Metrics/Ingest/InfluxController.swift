import Foundation
import HTTPTypes
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// InfluxDB's write API, for the agents operators already run (Telegraf, the InfluxDB client
/// libraries): `POST /write` (1.x) and `POST /api/v2/write` (2.x) take line protocol
/// (`LineProtocol`), gzipped or not; `GET /ping` and `POST /query` with `CREATE DATABASE` answer
/// what those clients ask before they write. Answers and errors have InfluxDB's shapes, which
/// the clients read: 204 once the points are committed; 400 naming each line that was refused,
/// the other lines being stored (InfluxDB's "partial write"); 413, 429 and 503 with Retry-After.
///
/// An ingest token (or an admin's access token) is accepted in every form these clients send
/// it: `Authorization: Token …`, `Bearer …`, Basic with the token as the password (all three
/// read by `AuthMiddleware`), and 1.x's `?p=` (the user name, `u`, is not read).
package struct InfluxController {
    enum API {
        case v1, v2
    }

    let writer: Writer
    let auth: any Authenticating
    let limits: IngestController.Limits

    package init(writer: Writer, auth: any Authenticating, limits: IngestController.Limits) {
        self.writer = writer
        self.auth = auth
        self.limits = limits
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/write") { request, context in
            try await InfluxErrors.answer(.v1) { try await write(request, context, api: .v1) }
        }
        router.post("/api/v2/write") { request, context in
            try await InfluxErrors.answer(.v2) { try await write(request, context, api: .v2) }
        }
        // Clients ask whether the server is up; InfluxDB answers without authentication.
        router.get("/ping") { _, _ in Self.pong }
        // Telegraf's 1.x output and the 1.x client create their database first.
        router.post("/query") { request, context in
            try await InfluxErrors.answer(.v1) { try await query(request, context) }
        }
        return router
    }

    static var pong: Response {
        Response(status: .noContent, headers: [HTTPField.Name("X-Influxdb-Version")!: "pulseboard", HTTPField.Name("X-Influxdb-Build")!: "OSS"])
    }

    func write(_ request: Request, _ context: AppRequestContext, api: API) async throws -> Response {
        let scope = try IngestController.ingestScope(try await principal(request, context, api: api))
        let query = request.uri.queryParameters
        // Pulseboard has one store: the database or bucket is required, as InfluxDB requires it,
        // and not kept.
        switch api {
        case .v1: guard query.get("db").map({ !$0.isEmpty }) == true else { throw APIError.badRequest("database is required") }
        case .v2: guard query.get("bucket").map({ !$0.isEmpty }) == true else { throw APIError.badRequest("bucket is required") }
        }
        guard let precision = LineProtocol.Precision(parameter: query.get("precision")) else {
            throw APIError.badRequest("precision is one of ns (or n), us (or u), ms, s, m, h")
        }
        let body = try await request.readDecompressedBody(upTo: limits.maxBodyBytes)
        let batch = LineProtocol.parse(body, precision: precision, nowMs: Date().millisecondsSince1970)
        guard batch.points.count <= limits.maxPoints else {
            throw APIError.tooLarge("At most \(limits.maxPoints) points per request; split the batch.")
        }
        if !batch.points.isEmpty {
            // These clients send no idempotency key, but a retry sends the same body: when every
            // line carries its timestamp, the same body is the same points, stored once.
            let key = batch.everyLineTimestamped ? "\(scope):body:\(body.sha256Hex)" : nil
            _ = try await IngestController.commit(IngestBatch(points: batch.points, idempotencyKey: key), to: writer)
        }
        guard batch.errors.isEmpty else {
            let shown = batch.errors.prefix(10).map(\.description).joined(separator: "; ")
            let more = batch.errors.count > 10 ? "; and \(batch.errors.count - 10) more lines" : ""
            throw APIError.badRequest("partial write: unable to parse \(shown)\(more) dropped=\(batch.errors.count)")
        }
        return Response(status: .noContent)
    }

    /// `CREATE DATABASE …` succeeds (there is one store: nothing to create); other statements
    /// are refused with a pointer to where Pulseboard answers queries.
    func query(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        _ = try IngestController.ingestScope(try await principal(request, context, api: .v1))
        var statement = request.uri.queryParameters.get("q")
        if statement == nil, request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
            let form = String(decoding: try await request.readBody(upTo: Request.standardBodyLimit), as: UTF8.self)
            statement = URLComponents(string: "?" + form)?.queryItems?.first { $0.name == "q" }?.value
        }
        // Forms and query strings encode spaces as "+".
        let words = statement?.replacingOccurrences(of: "+", with: " ").split(separator: " ").prefix(2).joined(separator: " ").uppercased()
        guard words == "CREATE DATABASE" else {
            throw APIError.badRequest(
                "Pulseboard takes writes here and answers only CREATE DATABASE; query with /api/v1/metrics or the Prometheus API under /prometheus.")
        }
        var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"results":[{"statement_id":0}]}"#)))
        response.headers[.contentType] = "application/json"
        return response
    }

    /// Who is writing: from the `Authorization` header (read by `AuthMiddleware`) or 1.x's `?p=`.
    func principal(_ request: Request, _ context: AppRequestContext, api: API) async throws -> Principal? {
        if let principal = context.principal { return principal }
        guard api == .v1, let password = request.uri.queryParameters.get("p"), !password.isEmpty else { return nil }
        guard let principal = try await auth.principal(.bearer(password)) else {
            throw APIError.unauthorized("The token in ?p= is invalid or revoked.")
        }
        return principal
    }
}

/// InfluxDB's error bodies: 1.x answers `{"error": "…"}`, 2.x `{"code": "…", "message": "…"}`,
/// with the status and headers (Retry-After) of the error.
enum InfluxErrors {
    static func answer(_ api: InfluxController.API, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            let object: [String: String] =
                switch api {
                case .v1: ["error": error.message]
                case .v2: ["code": code(error.status), "message": error.message]
                }
            var headers = error.headers
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.sortedKeys.encode(object))))
        }
    }

    /// InfluxDB 2.x's error codes.
    static func code(_ status: HTTPResponse.Status) -> String {
        switch status {
        case .badRequest: "invalid"
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .contentTooLarge: "request too large"
        case .unsupportedMediaType: "unsupported media type"
        case .tooManyRequests: "too many requests"
        case .serviceUnavailable: "unavailable"
        default: "internal error"
        }
    }
}
