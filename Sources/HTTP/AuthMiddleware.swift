import Foundation
import HTTPTypes
import Hummingbird
import PulseboardKernel

/// Works out who is calling, from `Authorization: Bearer …` (an access token or an ingest token,
/// also accepted as `Token …` and as the password of HTTP Basic, for the clients that send those)
/// or from the browser session cookie. A bearer credential that is present but invalid is a 401
/// straight away. The cookie counts for safe methods (GET, HEAD); for WebSocket upgrades only
/// from our own origin or a listed one (`--cors-origins`), since browsers send cookies with a
/// cross-site upgrade; for state-changing calls only with the session's `X-CSRF-Token`, which
/// our own pages carry and another site cannot know.
package struct AuthMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext
    package static let sessionCookie = "pb_session"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    let auth: any Authenticating
    /// The origins besides our own whose pages may open a cookie-authenticated WebSocket.
    let listedOrigins: Set<String>

    package init(auth: any Authenticating, listedOrigins: Set<String>) {
        self.auth = auth
        self.listedOrigins = listedOrigins
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            guard let token = Self.token(inAuthorization: header), let principal = try await auth.principal(.bearer(token)) else {
                throw APIError.unauthorized("The bearer token is invalid, expired or revoked.")
            }
            context.principal = principal
        } else if let session = request.cookies[Self.sessionCookie]?.value, cookieCounts(for: request) {
            context.principal = try await auth.principal(.session(session))
        }
        return try await next(request, context)
    }

    /// The token of an `Authorization` header: `Bearer <token>`, `Token <token>` (InfluxDB 2.x
    /// clients and Telegraf), or HTTP Basic with the token as the password (InfluxDB 1.x
    /// clients, Grafana's basic authentication; the user name is not read).
    package static func token(inAuthorization header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let credentials = parts[1].trimmingCharacters(in: .whitespaces)
        switch parts[0].lowercased() {
        case "bearer", "token": return credentials
        case "basic":
            guard let decoded = Data(base64Encoded: credentials), let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else { return nil }
            return String(text[text.index(after: colon)...])
        default: return nil
        }
    }

    private func cookieCounts(for request: Request) -> Bool {
        if request.headers[.upgrade]?.lowercased() == "websocket" { return originMayUpgrade(request) }
        return request.method == .get || request.method == .head || CSRF.matches(request, request.headers[Self.csrfHeader])
    }

    /// A browser sends the http(s) origin of the page that opens the socket: it must be our own
    /// (the one the request is addressed to) or a listed one. Other clients send none or another
    /// scheme; they are not a page of another site using the user's cookie.
    private func originMayUpgrade(_ request: Request) -> Bool {
        let pages = request.headers[values: .origin].filter { $0.hasPrefix("http://") || $0.hasPrefix("https://") }
        return pages.allSatisfy { origin in
            listedOrigins.contains(origin) || origin.drop { $0 != "/" }.dropFirst(2).lowercased() == request.head.authority?.lowercased()
        }
    }
}

/// What a caller presented: a bearer token (an access or ingest token) or a browser session.
package enum Credential: Sendable {
    case bearer(String)
    case session(String)
}

/// Turns a credential into who is calling, as the database has them now (Accounts implements it).
package protocol Authenticating: Sendable {
    /// Nil when the credential is unknown, expired or revoked.
    func principal(_ credential: Credential) async throws -> Principal?
}
