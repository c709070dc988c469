import HTTPTypes
import Hummingbird

/// Works out who is calling, from `Authorization: Bearer …` (an access token or an ingest token)
/// or from the browser session cookie. A bearer credential that is present but invalid is a 401
/// straight away. The cookie counts for safe methods (GET, HEAD) and WebSocket upgrades; for
/// state-changing calls only with an `X-CSRF-Token` header equal to the CSRF cookie, which our
/// own pages can send and a cross-site form cannot (double submit).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let sessionCookie = "pb_session"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    let auth: AuthService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            guard header.lowercased().hasPrefix("bearer "), let principal = try await auth.principal(bearer: String(header.dropFirst(7))) else {
                throw APIError.unauthorized("The bearer token is invalid, expired or revoked.")
            }
            context.principal = principal
        } else if request.method == .get || request.method == .head || WebController.csrfMatches(request, request.headers[Self.csrfHeader]),
            let session = request.cookies[Self.sessionCookie]?.value
        {
            context.principal = try await auth.principal(session: session)
        }
        return try await next(request, context)
    }
}
