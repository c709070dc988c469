import Foundation
import Hummingbird
import PulseboardKernel

/// CSRF protection for cookie-authenticated requests: our pages carry the token in forms and in
/// `X-CSRF-Token`. With a session, the token is derived from the session's secret, so a token or
/// cookie that another site plants is worth nothing: only a page we rendered for this
/// session knows it. Before login (the login form) it is a double-submit cookie that another
/// site can neither read nor set.
package enum CSRF {
    package static let cookie = "pb_csrf"

    /// The token for a page and, when the browser needs one, a new cookie value.
    package static func token(_ request: Request) -> (String, String?) {
        if let session = request.cookies[AuthMiddleware.sessionCookie]?.value, !session.isEmpty { return (sessionBound(session), nil) }
        if let existing = request.cookies[cookie]?.value, !existing.isEmpty { return (existing, nil) }
        let token = SecretToken.generate(prefix: "")
        return (token, token)
    }

    package static func matches(_ request: Request, _ submitted: String?) -> Bool {
        guard let submitted, !submitted.isEmpty else { return false }
        if let session = request.cookies[AuthMiddleware.sessionCookie]?.value, !session.isEmpty { return submitted == sessionBound(session) }
        return request.cookies[cookie]?.value == submitted
    }

    private static func sessionBound(_ session: String) -> String {
        Data("pulseboard-csrf:\(session)".utf8).sha256Hex
    }
}
