import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import PulseboardKernel

/// The request context of every route: who is calling (set by `AuthMiddleware`), where from, and
/// the WebSocket upgrade hook.
public struct AppRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public let remoteAddress: SocketAddress?
    /// The connection, so that a WebSocket whose client stopped reading can be cut off.
    package let channel: any Channel
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
        remoteAddress = source.channel.remoteAddress
    }

    public var requestDecoder: BoundedJSONRequestDecoder { .init() }
    public var maxUploadSize: Int { Request.standardBodyLimit }
    public var responseEncoder: JSONEncoder { .sortedKeys }

    /// The client's IP address as text, for rate limits and logs.
    package var clientAddress: String {
        remoteAddress?.ipAddress ?? "unknown"
    }

    /// The logged-in user, or 401; with `roles`, 403 unless the user has one of them.
    package func requireUser(_ roles: Set<Role>? = nil) throws -> UserClaims {
        switch principal {
        case .user(let user):
            if let roles, !roles.contains(user.role) { throw APIError.forbidden() }
            return user
        case .ingest:
            throw APIError.forbidden("Ingest tokens may only ingest.")
        case nil:
            throw APIError.unauthorized()
        }
    }
}
