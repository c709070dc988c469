import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Bounds what a connection can hold before it has sent a request: at most so many connections
/// in all and per client address, and a deadline for the first request head. Hummingbird's
/// idle timeout starts only after the first request (the WebSocket-upgrade pipeline adds it
/// then), so a client that trickles or never finishes its headers would otherwise keep its slot.
/// Wraps the server's child channel and puts one small handler in front of it.
package struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    package typealias Value = Inner.Value

    let inner: Inner
    let counter: ConnectionCounter
    let headTimeout: TimeAmount

    package func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        guard counter.admit(address) else {
            logger.notice("Refusing a connection over the limit", metadata: ["address": "\(address)"])
            return channel.close().flatMapThrowing { throw ChannelError.ioOnClosedChannel }
        }
        channel.closeFuture.whenComplete { _ in counter.release(address) }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestHeadDeadline(timeout: headTimeout), position: .first)
        }.flatMap { inner.setup(channel: channel, logger: logger) }
    }

    package func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Open connections, in all and per client address.
package final class ConnectionCounter: Sendable {
    let maxTotal: Int
    let maxPerAddress: Int
    private let state = Mutex<(total: Int, perAddress: [String: Int])>((0, [:]))

    init(maxTotal: Int, maxPerAddress: Int) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
    }

    func admit(_ address: String) -> Bool {
        state.withLock { state in
            guard state.total < maxTotal, state.perAddress[address, default: 0] < maxPerAddress else { return false }
            state.total += 1
            state.perAddress[address, default: 0] += 1
            return true
        }
    }

    func release(_ address: String) {
        state.withLock { state in
            state.total -= 1
            let left = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = left > 0 ? left : nil
        }
    }

    var open: Int { state.withLock { $0.total } }
}

/// Closes the connection unless its first request head (up to the blank line) has arrived within
/// `timeout`, then steps out of the pipeline.
package final class RequestHeadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// The last bytes seen, for a blank line split across reads.
    private var tail: [UInt8] = []

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context) }
    }

    package func channelActive(context: ChannelHandlerContext) {
        startTimer(context)
        context.fireChannelActive()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = tail + Array(buffer: unwrapInboundIn(data))
        let headEnded = bytes.indices.dropLast(3).contains { bytes[$0...].starts(with: [13, 10, 13, 10]) }
        tail = Array(bytes.suffix(3))
        context.fireChannelRead(data)
        if headEnded { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    private func startTimer(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { context.close(promise: nil) }
    }
}

/// Closes a connection whose request body stalls: from a request head until the body's end, the
/// body has to arrive at `minimumBytesPerSecond` or faster, checked every `window`. A complete
/// head promises nothing about the body, and a client that sends one byte now and then would
/// otherwise keep its slot for as long as it likes. Only the time the server was asking for more
/// counts (a read outstanding): while the handler has not taken what came (backpressure, a busy
/// database), a client is not blamed for sending nothing. Sits after HTTP decoding.
package final class RequestBodyPace: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = HTTPRequestPart
    package typealias InboundOut = HTTPRequestPart
    package typealias OutboundIn = HTTPResponsePart
    package typealias OutboundOut = HTTPResponsePart

    private let window: TimeAmount
    private let minimumBytesPerSecond: Int
    private var inBody = false
    private var receivedInWindow = 0
    /// Time in this window with a read outstanding, and since when one is.
    private var waitedInWindow = TimeAmount.zero
    private var waitingSince: NIODeadline?
    private var timer: Scheduled<Void>?

    init(window: TimeAmount, minimumBytesPerSecond: Int) {
        self.window = window
        self.minimumBytesPerSecond = minimumBytesPerSecond
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let since = waitingSince {
            waitedInWindow = waitedInWindow + (NIODeadline.now() - since)
            waitingSince = nil
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // Most requests have no body: nothing to pace, no timer to set.
            let length = head.headerFields[.contentLength]
            inBody = head.headerFields[.transferEncoding] != nil || (length != nil && length != "0")
            receivedInWindow = 0
            waitedInWindow = .zero
            if inBody { scheduleCheck(context) }
        case .body(let bytes):
            receivedInWindow += bytes.readableBytes
        case .end:
            inBody = false
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    package func read(context: ChannelHandlerContext) {
        if waitingSince == nil { waitingSince = .now() }
        context.read()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func scheduleCheck(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: window) { [self] in
            guard inBody else { return }
            let now = NIODeadline.now()
            if let since = waitingSince {
                waitedInWindow = waitedInWindow + (now - since)
                waitingSince = now
            }
            let waitedSeconds = Double(waitedInWindow.nanoseconds) / 1e9
            // Half a window of asking is enough to judge; less is the server's own doing.
            if waitedInWindow * 2 >= window, Double(receivedInWindow) < Double(minimumBytesPerSecond) * waitedSeconds {
                context.close(promise: nil)
                return
            }
            receivedInWindow = 0
            waitedInWindow = .zero
            scheduleCheck(context)
        }
    }
}
