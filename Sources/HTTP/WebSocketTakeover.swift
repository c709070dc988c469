import Hummingbird
import NIOCore
import Synchronization

/// How a WebSocket route takes its connection over once the server has answered the upgrade:
/// it adds its NIO handlers to the connection's pipeline. The route runs in the router, behind
/// every middleware (authentication, origin, rate limits), and leaves this in the request
/// context; the server's upgrade channel reads it after the router ran (`WebSocketUpgradeChannel`).
package final class WebSocketTakeover: Sendable {
    /// Called on the connection's event loop, right after the handshake.
    package typealias Handlers = @Sendable (any Channel) throws -> Void

    private let handlers = Mutex<Handlers?>(nil)

    package var value: Handlers? { handlers.withLock { $0 } }

    func set(_ value: @escaping Handlers) {
        handlers.withLock { $0 = value }
    }
}

extension RouterMethods where Context == AppRequestContext {
    /// A WebSocket endpoint: `takeover` decides what serves the connection once it is upgraded.
    /// A plain GET gets 426 instead of an empty 200.
    @discardableResult
    package func webSocket(
        _ path: RouterPath, takeover: @escaping @Sendable (Request, AppRequestContext) async throws -> WebSocketTakeover.Handlers
    ) -> Self {
        get(path) { request, context -> Response in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                var error = APIError(.upgradeRequired, code: "upgrade_required", message: "This endpoint speaks WebSocket.")
                error.headers[.upgrade] = "websocket"
                throw error
            }
            context.webSocketTakeover.set(try await takeover(request, context))
            return Response(status: .ok)
        }
    }
}
