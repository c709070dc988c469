import Hummingbird
import PulseboardHTTP

/// `GET /ws`: one WebSocket for every channel the caller may follow.
package struct LiveController {
    let session: LiveSession

    package init(session: LiveSession) {
        self.session = session
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.webSocket("/ws") { request, context in
            session.takeover(principal: context.principal, credential: Self.credential(request), initialChannel: nil, logger: context.logger)
        }
        return router
    }

    /// What `AuthMiddleware` authenticated the upgrade with, if anything.
    package static func credential(_ request: Request) -> Credential? {
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") { return .bearer(String(header.dropFirst(7))) }
        return request.cookies[AuthMiddleware.sessionCookie].map { .session($0.value) }
    }
}
