import Foundation
import Hummingbird
import NIOCore
import PulseboardKernel
import Synchronization

/// The request context of every route: who is calling (set by `AuthMiddleware`), where from, and
/// the WebSocket upgrade hook.
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by a WebSocket route that agrees to an upgrade (`webSocket(_:takeover:)`).
    package let webSocketTakeover = WebSocketTakeover()
    public let remoteAddress: SocketAddress?
    public var principal: Principal? {
        didSet { caller.userID = if case .user(let user) = principal { user.id } else { nil } }
    }
    /// The request's trace id (`RequestTelemetryMiddleware`).
    package var traceID = ""
    /// Who the caller turned out to be, for the request log: its middleware runs before
    /// authentication and, the context being a value, would not see the principal otherwise.
    package let caller = Caller()
    /// The client's IP address as text, for rate limits and logs: the connection's peer, or the
    /// client a trusted proxy names (`ForwardedClientMiddleware`).
    package var clientAddress: String
    /// The scheme the client used, when a trusted proxy said so (`X-Forwarded-Proto`).
    package var forwardedProto: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        clientAddress = remoteAddress?.ipAddress ?? "unknown"
    }

    public var requestDecoder: BoundedJSONRequestDecoder { .init() }
    public var maxUploadSize: Int { Request.standardBodyLimit }
    public var responseEncoder: JSONEncoder { .sortedKeys }

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

/// The user a request was made by, once authentication has found out.
package final class Caller: Sendable {
    private let id = Mutex<Int64?>(nil)

    package var userID: Int64? {
        get { id.withLock { $0 } }
        set { id.withLock { $0 = newValue } }
    }
}
