import Hummingbird
import HummingbirdWebSocket

/// `GET /ws` (any channel) and `GET /ws/metrics?type=<name>` (the source documents' shortcut for
/// one metrics channel, for clients with a session cookie).
struct LiveController {
    let session: LiveSession

    func addRoutes(to router: some RouterMethods<AppRequestContext>) {
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
        router.ws("/ws/metrics", shouldUpgrade: Self.requireUpgrade) { inbound, outbound, context in
            let name = context.request.uri.queryParameters.get("type") ?? "host.cpu"
            await session.run(
                inbound: inbound,
                outbound: outbound,
                principal: context.requestContext.principal,
                credential: Self.credential(context.request),
                initialChannel: LiveChannels.metricsPrefix + name,
                connection: context.requestContext.channel,
                logger: context.logger
            )
        }
    }

    /// What `AuthMiddleware` authenticated the upgrade with, if anything.
    static func credential(_ request: Request) -> LiveSession.Credential? {
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") { return .bearer(String(header.dropFirst(7))) }
        return request.cookies[AuthMiddleware.sessionCookie].map { .session($0.value) }
    }

    /// A plain GET on a WebSocket path gets 426 instead of an empty 200.
    @Sendable static func requireUpgrade(_ request: Request, _ context: AppRequestContext) async throws -> RouterShouldUpgrade {
        guard request.headers[.upgrade]?.lowercased() == "websocket" else {
            var error = APIError(.upgradeRequired, code: "upgrade_required", message: "This endpoint speaks WebSocket.")
            error.headers[.upgrade] = "websocket"
            throw error
        }
        return .upgrade([:])
    }
}
