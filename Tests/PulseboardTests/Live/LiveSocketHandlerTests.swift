import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import PulseboardLive

/// The WebSocket protocol that `LiveSocketHandler` speaks on the event loop, on an embedded
/// channel with a clock the test moves: pings answered, a client that stops answering pings cut
/// off, the close handshake, a message over the limit.
@Suite("Live socket handler") struct LiveSocketHandlerTests {
    static let settings = LiveSession.Settings(sendQueueCapacity: 8, authTimeout: .seconds(10), pingInterval: .seconds(30))

    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(LiveSocketHandler(settings: settings))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8] = []) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(bytes: bytes))
    }

    @Test func aPingIsAnsweredWithItsData() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.frame(.ping, [1, 2, 3]))
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong && pong.data == ByteBuffer(bytes: [1, 2, 3]))
    }

    @Test func aClientThatAnswersPingsStaysAndOneThatStopsIsCutOff() throws {
        let channel = try Self.channel()
        for _ in 0..<3 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(30))
            #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .ping)
            try channel.writeInbound(Self.frame(.pong))
        }
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .ping)
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(!channel.isActive)
    }

    @Test func aCloseFrameIsAnsweredWithItsCodeAndTheConnectionCloses() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.frame(.connectionClose, [0x03, 0xE8, 0x62, 0x79, 0x65]))  // 1000, "bye"
        let answer = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(answer.opcode == .connectionClose && answer.data == ByteBuffer(bytes: [0x03, 0xE8]))
        #expect(!channel.isActive)
    }

    @Test func aMessageOverTheLimitIsAnsweredWith1009() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 8, maxAccumulatedFrameSize: 16),
            LiveSocketHandler(settings: Self.settings),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(WebSocketFrame(fin: false, opcode: .text, data: ByteBuffer(bytes: Array(repeating: 65, count: 10))))
        try? channel.writeInbound(WebSocketFrame(fin: true, opcode: .continuation, data: ByteBuffer(bytes: Array(repeating: 65, count: 10))))
        var close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        #expect(close.data.readWebSocketErrorCode() == .messageTooLarge)
        #expect(!channel.isActive)
    }
}
