import Foundation
import Logging
import PulseboardDatabase
import PulseboardKernel
import ServiceLifecycle
import Synchronization

/// Live data across instances sharing one PostgreSQL: short messages on one LISTEN/NOTIFY
/// channel, each `<kind>:<sending instance>:<body>`. Whoever publishes a kind registers what the
/// other instances do with it (Live's own notices and access changes; the metrics live log; the
/// classroom's card changes) and, with `connected`, how they catch up after their LISTEN
/// connection was re-established. An instance ignores its own messages.
package final class InstanceRelay: Service {
    static let channel = "pulseboard_live"
    /// PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more.
    static let maxPayloadBytes = 7_999

    struct Handler: Sendable {
        var received: @Sendable (_ from: String, _ body: String) async -> Void
        var connected: @Sendable () async -> Void
    }

    /// A message `send` queued, with what the other instances miss if it cannot be sent.
    struct Outgoing: Sendable {
        var kind: String
        var body: String
        var consequence: String
    }

    let notifications: any InstanceNotifications
    /// This process among the instances.
    let instanceID: String
    let telemetry: Telemetry
    let logger: Logger
    private let handlers = Mutex<[String: Handler]>([:])
    /// What `send` queued, sent in order by `run`; bounded, so that a database that does not take
    /// NOTIFYs costs dropped messages (logged) and not memory.
    private let outbox: AsyncStream<Outgoing>
    private let outboxSink: AsyncStream<Outgoing>.Continuation
    static let outboxCapacity = 1_024

    package init(notifications: any InstanceNotifications, instanceID: String, telemetry: Telemetry, logger: Logger) {
        self.notifications = notifications
        self.instanceID = instanceID
        self.telemetry = telemetry
        self.logger = logger
        (outbox, outboxSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(Self.outboxCapacity))
    }

    /// Registers what to do with messages of `kind` from other instances (before `run`).
    package func register(
        _ kind: String, connected: @escaping @Sendable () async -> Void = {},
        received: @escaping @Sendable (_ from: String, _ body: String) async -> Void
    ) {
        precondition(!kind.contains(":"), "a relay kind has no colon")
        handlers.withLock { $0[kind] = Handler(received: received, connected: connected) }
    }

    /// Sends a message to the other instances and waits for PostgreSQL to take it. Throws when
    /// the payload is too long or the database did not take it.
    package func sendNow(_ kind: String, _ body: String = "") async throws {
        try await Self.send(kind, body, from: instanceID, via: notifications)
        telemetry.liveNotificationSent()
    }

    /// Sends a message as `sender`: for a process that is no instance, such as the command line.
    static func send(_ kind: String, _ body: String = "", from sender: String, via notifications: any InstanceNotifications) async throws {
        let payload = "\(kind):\(sender):\(body)"
        guard payload.utf8.count <= maxPayloadBytes else { throw PayloadTooLong(kind: kind, bytes: payload.utf8.count) }
        try await notifications.notify(channel, payload: payload)
    }

    /// Sends without waiting, in order with the other `send`s; a failure, or a full queue, is
    /// logged with `consequence` (what the others miss).
    package func send(_ kind: String, _ body: String = "", consequence: String) {
        if case .dropped = outboxSink.yield(Outgoing(kind: kind, body: body, consequence: consequence)) {
            logger.warning("Relay queue to other instances is full; \(consequence)", metadata: ["kind": "\(kind)"])
        }
    }

    /// Listens for the other instances and sends what `send` queued, until cancelled.
    package func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.sendQueued() }
            await notifications.listen(
                Self.channel,
                connected: {
                    for handler in self.handlers.withLock({ Array($0.values) }) { await handler.connected() }
                },
                received: { payload in
                    let parts = payload.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                    guard parts.count == 3, parts[1] != self.instanceID, let handler = self.handlers.withLock({ $0[String(parts[0])] }) else { return }
                    await handler.received(String(parts[1]), String(parts[2]))
                })
            group.cancelAll()
        }
    }

    private func sendQueued() async {
        for await message in outbox {
            do {
                try await sendNow(message.kind, message.body)
            } catch {
                logger.warning(
                    "Relay to other instances failed; \(message.consequence)", metadata: ["error": "\(error)", "kind": "\(message.kind)"])
            }
        }
    }

    struct PayloadTooLong: Error {
        let kind: String
        let bytes: Int
    }
}
