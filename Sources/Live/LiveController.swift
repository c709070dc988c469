import Hummingbird
import HummingbirdWebSocket
import PulseboardHTTP

/// `GET /ws`: one WebSocket for every channel the caller may follow.
package struct LiveController {
    let session: LiveSession

    package init(session: LiveSession) {
        self.session = session
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.ws("/ws", shouldUpgrade: Self.requireUpgrade) { inbound, outbound, context in
            await session.run(
                inbound: inbound,
                outbound: outbound,
                principal: context.requestContext.principal,
                credential: Self.credential(context.request),
                initialChannel: nil,
                connection: context.requestContext.channel,
                logger: context.logger
            )
        }
        return router
    }

    /// What `AuthMiddleware` authenticated the upgrade with, if anything.
    package static func credential(_ request: Request) -> Credential? {
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") { return .bearer(String(header.dropFirst(7))) }
        return request.cookies[AuthMiddleware.sessionCookie].map { .session($0.value) }
    }

    /// A plain GET on a WebSocket path gets 426 instead of an empty 200.
    @Sendable package static func requireUpgrade(_ request: Request, _ context: AppRequestContext) async throws -> RouterShouldUpgrade {
        guard request.headers[.upgrade]?.lowercased() == "websocket" else {
            var error = APIError(.upgradeRequired, code: "upgrade_required", message: "This endpoint speaks WebSocket.")
            error.headers[.upgrade] = "websocket"
            throw error
        }
        return .upgrade([:])
    }
}
