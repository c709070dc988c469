import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import PulseboardHTTP

/// HTTP/1.1 with WebSocket upgrades after which no task waits on the connection. Whether to
/// upgrade is the router's decision (every middleware, then the route), which leaves in the
/// request context how the connection is taken over (`WebSocketTakeover`); after the handshake
/// the route's NIO handlers own the socket and the connection's task ends. (Hummingbird's own
/// upgrade channel keeps a task per WebSocket, whose async frames were two thirds of an idle
/// socket's memory; BENCHMARKS.md.) Requests that do not upgrade are served as Hummingbird does.
struct WebSocketUpgradeChannel<WebSocketResponder: HTTPResponder>: ServerChildChannel, HTTPChannelHandler
where WebSocketResponder.Context == AppRequestContext {
    enum UpgradeResult: Sendable {
        case upgraded
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// The client asked for an upgrade that the router refused.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let webSocketResponder: WebSocketResponder
    let http1: HTTP1Channel.Configuration
    let maxFrameSize: Int

    init(responder: @escaping HTTPChannelHandler.Responder, webSocketResponder: WebSocketResponder, http1: HTTP1Channel.Configuration, maxFrameSize: Int) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.webSocketResponder = webSocketResponder
        self.http1 = http1
        self.maxFrameSize = maxFrameSize
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let attempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let takeover = NIOLoopBoundBox<WebSocketTakeover.Handlers?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    attempted.value = true
                    let decision = channel.eventLoop.makePromise(of: WebSocketTakeover.Handlers?.self)
                    decision.completeWithTask { try? await route(head, channel: channel, logger: logger) }
                    return decision.futureResult.map { handlers in
                        takeover.value = handlers
                        return handlers == nil ? nil : HTTPHeaders()
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        try takeover.value?(channel)
                        return .upgraded
                    }
                })
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let operations = channel.pipeline.syncOperations
                            try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                            try operations.addHandlers(http1.additionalChannelHandlers())
                            try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger))
                            let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                            return attempted.value ? .refused(http) : .notUpgraded(http)
                        }
                    }))
            // As Hummingbird configures its own: it handles pipelining and errors itself.
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            return Value(
                upgradeResult: try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration), channel: channel)
        }
    }

    /// Runs the upgrade request through the router; the route's takeover when it agreed.
    private func route(_ head: HTTPRequestHead, channel: any Channel, logger: Logger) async throws -> WebSocketTakeover.Handlers? {
        let request = Request(head: try HTTPRequest(head, secure: false, splitCookie: false), body: .init(buffer: .init()))
        let context = AppRequestContext(source: .init(channel: channel, logger: logger))
        let response = try await webSocketResponder.respond(to: request, context: context)
        return response.status == .ok ? context.webSocketTakeover.value : nil
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .upgraded:
                return  // the route's handlers own the connection now
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http):
                try await http.executeThenClose { _, outbound in
                    try await outbound.write(contentsOf: [
                        .head(HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])), .end(nil),
                    ])
                }
            }
        } catch {
            logger.debug("Connection ended during an upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// Only a connection's first request can upgrade; a later one is sent to connect again.
    private static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else { return try await responder(request, writer, channel) }
            let location = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            try await writer.writeResponse(HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw RedirectedUpgrade()
        }
    }
}

/// Ends a connection whose later request asked for an upgrade, once it was redirected.
private struct RedirectedUpgrade: Error {}
