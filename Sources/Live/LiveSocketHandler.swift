import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// The WebSocket protocol of one live connection, on its event loop: whole client messages go to
/// the `LiveConnection`; pings are answered; a ping goes out every `pingInterval` and a client
/// that has not answered the previous one is cut off; a close frame is answered and the
/// connection closed. No task waits on an idle connection: only these handlers and a timer.
final class LiveSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let settings: LiveSession.Settings
    /// Set before the handler is added; cleared when the socket closes.
    var connection: LiveConnection?
    private var closeSent = false
    private var awaitingPong = false
    /// The client sent more messages than may wait: the rest are ignored while it is closed.
    private var flooded = false
    private var pingTimer: Scheduled<Void>?

    init(settings: LiveSession.Settings) {
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) {
        schedulePing(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pingTimer?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pingTimer?.cancel()
        connection?.post(.closed)
        // The connection's subscriber writes through this handler: let go of each other.
        connection = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard !flooded, !closeSent, let connection else { return }
            var bytes = frame.unmaskedData
            let event: LiveConnection.Event = frame.opcode == .text ? .text(bytes.readString(length: bytes.readableBytes) ?? "") : .other
            if !connection.post(event) {
                flooded = true
                connection.flooded()
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            awaitingPong = false
        case .connectionClose:
            // The answer to our own close frame: the handshake is over.
            guard !closeSent else { return context.close(promise: nil) }
            // Answer with the client's status code, as the protocol asks, and end our side only:
            // the client closes the connection once it has read the answer (as Hummingbird's
            // server did; a client closed under it failed its last write). One that does not is
            // cut off after the close grace.
            var bytes = frame.unmaskedData
            let code = bytes.readSlice(length: 2) ?? ByteBuffer()
            closeSent = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)), promise: nil)
            context.close(mode: .output, promise: nil)
            let grace = TimeAmount.nanoseconds(Int64(settings.closeGrace.seconds * 1e9))
            context.eventLoop.assumeIsolated().scheduleTask(in: grace) {
                if context.channel.isActive { context.close(promise: nil) }
            }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The only error that reaches here is a message over the limit (the frame decoder's
        // protocol errors are answered by NIO's own handler before it).
        sendClose(context, code: .messageTooLarge, reason: "message too large")
        context.close(promise: nil)
    }

    /// Sends a close frame after what was written before; the client's answer closes the connection.
    func sendClose(_ context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        guard !closeSent else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
    }

    private func schedulePing(_ context: ChannelHandlerContext) {
        let interval = TimeAmount.nanoseconds(Int64(settings.pingInterval.seconds * 1e9))
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
            guard context.channel.isActive else { return }
            if awaitingPong {
                context.close(promise: nil)
                return
            }
            awaitingPong = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
            schedulePing(context)
        }
    }
}

/// A subscriber's messages as text frames on the connection. Writes from any thread: NIO runs
/// them on the connection's event loop in the order they were made.
struct WebSocketOutlet: LiveOutlet {
    let channel: any Channel
    let handler: NIOLoopBound<LiveSocketHandler>
    let closeGrace: Duration

    init(channel: any Channel, handler: LiveSocketHandler, closeGrace: Duration) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.closeGrace = closeGrace
    }

    func write(_ text: String, done: @escaping @Sendable () -> Void) {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in done() }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text)), promise: promise)
    }

    func close(code: WebSocketErrorCode, reason: String) {
        let (channel, handler) = (self.channel, self.handler)
        channel.eventLoop.execute {
            guard let context = try? channel.pipeline.syncOperations.context(handlerType: LiveSocketHandler.self) else { return }
            handler.value.sendClose(context, code: code, reason: reason)
        }
        channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(closeGrace.seconds * 1e9))) { channel.close(promise: nil) }
    }
}

/// The open live connections, so that a stopping server can tell each client to come back later
/// (no task per connection would notice the shutdown otherwise).
package final class OpenSockets: Service {
    private let open = Mutex<[ObjectIdentifier: LiveConnection]>([:])

    package init() {}

    func opened(_ connection: LiveConnection) {
        open.withLock { $0[ObjectIdentifier(connection)] = connection }
    }

    func closed(_ connection: LiveConnection) {
        _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    package func run() async throws {
        try? await gracefulShutdown()
        for connection in open.withLock({ Array($0.values) }) { connection.goingAway() }
    }
}
