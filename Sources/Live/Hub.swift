import DequeModule
import Foundation
import NIOWebSocket
import PulseboardKernel
import Synchronization

/// Publishes committed data to channels (`metrics:<name>`, `broadcast`, …). Every message gets
/// the next sequence number of its channel and is kept in a ring of recent messages, so that a
/// client that reconnects with `since` receives what it missed, or an explicit reset when the ring
/// no longer reaches back that far (or the server restarted: the epoch changed).
///
/// Channels whose pages reload what they show after a reset (`metrics:`, `class:`, `progress:`)
/// keep their ring only while someone follows them and for `resumeWindow` after the last one
/// left: a message on a channel nobody has followed lately is only counted, not encoded. Most
/// series and students are followed by nobody, and encoding every committed point for them took
/// a quarter of the CPU of metric ingest (measured with perf). Notices (`broadcast`,
/// `notifications:`) are always kept: nothing else holds them.
public final class Hub: Sendable {
    /// Identifies this hub's sequence numbering; a client that saw another epoch must reload.
    public let epoch: String
    /// Recent messages kept per channel: at most this many…
    let ringCapacity: Int
    /// …and at most this many bytes (one group commit can make one large message).
    let ringBytes: Int
    let resumeWindow: Duration
    private let state = Mutex(State())

    private struct State {
        var channels: [String: Channel] = [:]
    }

    private struct Channel {
        var seq: UInt64 = 0
        var recent: Deque<(seq: UInt64, text: String)> = []
        var recentBytes = 0
        var subscribers: [UInt64: LiveSubscriber] = [:]
        /// When someone last followed the channel; nil when nobody ever did.
        var lastFollowed: ContinuousClock.Instant?
    }

    public init(ringCapacity: Int, ringBytes: Int = 4 << 20, resumeWindow: Duration = .seconds(600)) {
        self.ringCapacity = ringCapacity
        self.ringBytes = ringBytes
        self.resumeWindow = resumeWindow
        epoch = UUID().uuidString.lowercased()
    }

    /// Publishes one message on a channel; it is encoded once and shared by every subscriber,
    /// and made (`data` evaluated) only when the channel keeps its messages.
    public func publish(channel: String, data: @autoclosure () -> some Encodable & Sendable) {
        state.withLock { state in
            var entry = state.channels[channel] ?? Channel()
            entry.seq += 1
            if !keepsMessages(entry, channel) {
                entry.recent.removeAll()
                entry.recentBytes = 0
                state.channels[channel] = entry
                return
            }
            let text = LiveMessage.data(channel: channel, seq: entry.seq, data: data())
            entry.recent.append((entry.seq, text))
            entry.recentBytes += text.utf8.count
            while entry.recent.count > ringCapacity || (entry.recentBytes > ringBytes && entry.recent.count > 1) {
                entry.recentBytes -= entry.recent.removeFirst().text.utf8.count
            }
            for subscriber in entry.subscribers.values {
                subscriber.send(text)
            }
            state.channels[channel] = entry
        }
    }

    /// Adds a subscriber to a channel. Under one lock it first sends the acknowledgement, then the
    /// missed messages (or a reset), so nothing published meanwhile can overtake them.
    func subscribe(_ subscriber: LiveSubscriber, to channel: String, since: UInt64?, epoch clientEpoch: String?) {
        state.withLock { state in
            var entry = state.channels[channel] ?? Channel()
            let current = entry.seq
            subscriber.send(LiveMessage.control(type: "subscribed", channel: channel, seq: current, epoch: epoch))
            if let since {
                let oldest = entry.recent.first?.seq ?? current + 1
                let gapFillable = (clientEpoch == nil || clientEpoch == epoch) && since <= current && since + 1 >= oldest
                if gapFillable {
                    for message in entry.recent where message.seq > since {
                        subscriber.send(message.text)
                    }
                } else {
                    subscriber.send(LiveMessage.control(type: "reset", channel: channel, seq: current, epoch: epoch))
                }
            }
            entry.subscribers[subscriber.id] = subscriber
            entry.lastFollowed = .now
            state.channels[channel] = entry
        }
    }

    func unsubscribe(_ subscriber: LiveSubscriber, from channel: String) {
        state.withLock { state in
            guard state.channels[channel]?.subscribers.removeValue(forKey: subscriber.id) != nil else { return }
            state.channels[channel]?.lastFollowed = .now
        }
    }

    /// Whether messages on the channel are kept (and so worth making): someone follows it or
    /// did within `resumeWindow`, or it is a notice channel.
    public func keepsMessages(on channel: String) -> Bool {
        state.withLock { state in keepsMessages(state.channels[channel] ?? Channel(), channel) }
    }

    /// Counts `count` messages on a channel that does not keep them, without making them (their
    /// content would come from the database): its sequence moves on, so that a client resuming
    /// from before them is told to reload rather than left without them.
    public func passOver(channel: String, count: Int) {
        state.withLock { state in
            var entry = state.channels[channel] ?? Channel()
            entry.seq += UInt64(count)
            entry.recent.removeAll()
            entry.recentBytes = 0
            state.channels[channel] = entry
        }
    }

    private func keepsMessages(_ entry: Channel, _ channel: String) -> Bool {
        !entry.subscribers.isEmpty || Self.isNotice(channel) || entry.lastFollowed.map { .now - $0 <= resumeWindow } ?? false
    }

    private static func isNotice(_ channel: String) -> Bool {
        channel == NoticeChannels.broadcast || channel.hasPrefix(NoticeChannels.notificationsPrefix)
    }

    /// The current sequence number of a channel (0 before its first message).
    public func sequence(of channel: String) -> UInt64 {
        state.withLock { $0.channels[channel]?.seq ?? 0 }
    }
}

/// Where a subscriber's messages go: its WebSocket (`LiveSocketHandler`), or a test's list.
package protocol LiveOutlet: Sendable {
    /// Writes one text message; `done` is called once it has left (or cannot leave any more).
    func write(_ text: String, done: @escaping @Sendable () -> Void)
    /// Sends a close frame after what was written, and cuts the connection if the client does
    /// not take it in time (a client that stopped reading never does).
    func close(code: WebSocketErrorCode, reason: String)
}

/// One WebSocket connection's side of the hub: its messages go straight to the connection, and
/// at most `queueCapacity` of them may be on their way at once. A client that lets more pile up
/// does not keep up: it is closed, and the publisher never waits for it.
package final class LiveSubscriber: Sendable {
    private static let nextID = Atomic<UInt64>(0)
    let id: UInt64
    private let outlet: any LiveOutlet
    private let queueCapacity: Int
    private let state = Mutex(State())
    private let onOverflow: @Sendable () -> Void

    private struct State {
        var inFlight = 0
        var closed = false
    }

    package init(queueCapacity: Int, outlet: any LiveOutlet, onOverflow: @escaping @Sendable () -> Void) {
        id = Self.nextID.add(1, ordering: .relaxed).newValue
        self.outlet = outlet
        self.queueCapacity = queueCapacity
        self.onOverflow = onOverflow
    }

    func send(_ text: String) {
        enum Verdict { case write, overflow, closed }
        let verdict = state.withLock { state -> Verdict in
            guard !state.closed else { return .closed }
            guard state.inFlight < queueCapacity else { return .overflow }
            state.inFlight += 1
            return .write
        }
        switch verdict {
        case .write: outlet.write(text) { self.state.withLock { $0.inFlight -= 1 } }
        case .overflow:
            onOverflow()
            close(code: .policyViolation, reason: "send queue full: the client does not keep up")
        case .closed: break
        }
    }

    /// Sends nothing more but a close frame with this reason (after what is on its way).
    func close(code: WebSocketErrorCode, reason: String) {
        let first = state.withLock { state in
            defer { state.closed = true }
            return !state.closed
        }
        if first { outlet.close(code: code, reason: reason) }
    }
}

/// The JSON texts sent over the WebSocket.
package enum LiveMessage {
    private struct Data<Payload: Encodable>: Encodable {
        var type = "data"
        var channel: String
        var seq: UInt64
        var data: Payload
    }

    private struct Control: Encodable {
        var type: String
        var channel: String?
        var seq: UInt64?
        var epoch: String?
        var code: String?
        var message: String?
    }

    static func data(channel: String, seq: UInt64, data: some Encodable) -> String {
        encode(Data(channel: channel, seq: seq, data: data))
    }

    static func control(type: String, channel: String? = nil, seq: UInt64? = nil, epoch: String? = nil) -> String {
        encode(Control(type: type, channel: channel, seq: seq, epoch: epoch))
    }

    static func error(code: String, message: String, channel: String? = nil) -> String {
        encode(Control(type: "error", channel: channel, code: code, message: message))
    }

    private static func encode(_ value: some Encodable) -> String {
        // Encoding plain structs of strings and numbers cannot fail.
        String(decoding: (try? JSONEncoder.sortedKeys.encode(value)) ?? Foundation.Data(), as: UTF8.self)
    }
}
