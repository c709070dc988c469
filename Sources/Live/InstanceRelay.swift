import Foundation
import Logging
import PulseboardDatabase
import PulseboardKernel
import ServiceLifecycle
import Synchronization

/// Live data across instances sharing one PostgreSQL, in two forms:
///
/// - **Messages** (`send`): notices, card changes, progress, access changes. Each is appended to
///   the `relay_log` table, numbered per sending instance, and rung with a NOTIFY that names the
///   sender. Every other instance reads them in order and each once (`InstanceLogFollower`),
///   those sent while its LISTEN connection was away included, and hands each to the handler
///   registered for its kind. Bodies are not bound by NOTIFY's 8,000 bytes.
/// - **Doorbells** (`ring`): a bare NOTIFY for a log kept elsewhere (the metrics live log), whose
///   reader catches up by itself.
///
/// A NOTIFY payload is `<kind>:<sending instance>`; an instance ignores its own.
package final class InstanceRelay: Service {
    static let channel = "pulseboard_live"
    /// The doorbell of `relay_log`.
    static let logKind = "log"
    /// How long messages stay in `relay_log`: far longer than any LISTEN reconnect.
    static let retention: Int64 = 600_000

    struct Doorbell: Sendable {
        var rung: @Sendable (_ from: String) -> Void
        var connected: @Sendable () -> Void
    }

    /// One message of `relay_log`.
    struct Message: Sendable {
        var kind: String
        var body: String
    }

    /// A message `send` queued, with what the other instances miss if it cannot be sent.
    struct Outgoing: Sendable {
        var kind: String
        var body: String
        var consequence: String
    }

    let store: any Database
    let notifications: any InstanceNotifications
    /// This process among the instances.
    let instanceID: String
    let telemetry: Telemetry
    let logger: Logger
    private let handlers = MessageHandlers()
    private let doorbells = Mutex<[String: Doorbell]>([:])
    private let follower: InstanceLogFollower<Message>
    /// What `send` queued, appended in order by `run`; bounded, so that a database that does not
    /// take them costs dropped messages (logged) and not memory.
    private let outbox: AsyncStream<Outgoing>
    private let outboxSink: AsyncStream<Outgoing>.Continuation
    static let outboxCapacity = 1_024

    package init(store: any Database, notifications: any InstanceNotifications, instanceID: String, telemetry: Telemetry, logger: Logger) {
        self.store = store
        self.notifications = notifications
        self.instanceID = instanceID
        self.telemetry = telemetry
        self.logger = logger
        (outbox, outboxSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(Self.outboxCapacity))
        let handlers = self.handlers
        follower = InstanceLogFollower(
            fetch: { instance, after, notBefore in
                try await store.select(
                    SQLStatement(
                        "SELECT seq, kind, body FROM relay_log WHERE instance = ? AND seq > ? AND created_at >= ? ORDER BY seq LIMIT 500",
                        .text(instance), .integer(after), .integer(notBefore))
                ).map { row in
                    guard row.count == 3, let seq = row[0].int, let kind = row[1].string, let body = row[2].string else {
                        throw UnexpectedRow(table: "relay_log", row: row)
                    }
                    return (seq, Message(kind: kind, body: body))
                }
            },
            latest: { notBefore in
                var latest: [String: Int64] = [:]
                for row in try await store.select(
                    SQLStatement(
                        "SELECT instance, MAX(seq) FROM relay_log WHERE created_at >= ? AND instance <> ? GROUP BY instance", .integer(notBefore),
                        .text(instanceID)))
                {
                    guard row.count == 2, let instance = row[0].string, let seq = row[1].int else { throw UnexpectedRow(table: "relay_log", row: row) }
                    latest[instance] = seq
                }
                return latest
            },
            logger: logger
        ) { _, message in
            await handlers[message.kind]?(message.body)
        }
    }

    /// Registers what to do with messages of `kind` from other instances (before `run`).
    package func register(_ kind: String, received: @escaping @Sendable (_ body: String) async -> Void) {
        handlers[kind] = received
    }

    /// Registers a doorbell: `rung` with the sender's id when another instance rings `kind`,
    /// `connected` after every (re)connect of LISTEN, when rings may have been missed.
    package func registerDoorbell(_ kind: String, connected: @escaping @Sendable () -> Void, rung: @escaping @Sendable (_ from: String) -> Void) {
        precondition(!kind.contains(":") && kind != Self.logKind, "a doorbell kind has no colon and is not the relay log's")
        doorbells.withLock { $0[kind] = Doorbell(rung: rung, connected: connected) }
    }

    /// Rings `kind` on the other instances and waits for PostgreSQL to take the NOTIFY.
    package func ring(_ kind: String) async throws {
        try await notifications.notify(Self.channel, payload: Self.payload(kind, from: instanceID))
        telemetry.liveNotificationSent()
    }

    /// Sends a message to the other instances without waiting, in order with the other `send`s;
    /// a failure, or a full queue, is logged with `consequence` (what the others miss).
    package func send(_ kind: String, _ body: String = "", consequence: String) {
        if case .dropped = outboxSink.yield(Outgoing(kind: kind, body: body, consequence: consequence)) {
            logger.warning("Relay queue to other instances is full; \(consequence)", metadata: ["kind": "\(kind)"])
        }
    }

    /// Sends one message from a process that is no instance, such as the command line.
    static func announce(_ kind: String, _ body: String = "", in store: any Database, via notifications: any InstanceNotifications) async throws {
        let sender = "command-line-\(UUID().uuidString.lowercased())"
        try await store.transaction([append(instance: sender, seq: 1, kind: kind, body: body)])
        try await notifications.notify(channel, payload: payload(logKind, from: sender))
    }

    private static func payload(_ kind: String, from sender: String) -> String { "\(kind):\(sender)" }

    private static func append(instance: String, seq: Int64, kind: String, body: String) -> SQLStatement {
        SQLStatement(
            "INSERT INTO relay_log (instance, seq, created_at, kind, body) VALUES (?, ?, ?, ?, ?)", .text(instance), .integer(seq),
            .integer(Date().millisecondsSince1970), .text(kind), .text(body))
    }

    /// Listens for the other instances, reads their messages and appends this one's, until cancelled.
    package func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.appendQueued() }
            group.addTask { await self.follower.run() }
            group.addTask { await self.pruneOldMessages() }
            await notifications.listen(
                Self.channel,
                connected: {
                    self.follower.ringAll()
                    for doorbell in self.doorbells.withLock({ Array($0.values) }) { doorbell.connected() }
                },
                received: { payload in
                    let parts = payload.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2, parts[1] != self.instanceID else { return }
                    let kind = String(parts[0])
                    let from = String(parts[1])
                    if kind == Self.logKind {
                        self.follower.ring(instance: from)
                    } else {
                        self.doorbells.withLock { $0[kind] }?.rung(from)
                    }
                })
            group.cancelAll()
        }
    }

    /// Appends what `send` queued, numbered in order, and rings after each.
    private func appendQueued() async {
        var seq: Int64 = 0
        for await message in outbox.cancelOnGracefulShutdown() {
            do {
                try await store.transaction([Self.append(instance: instanceID, seq: seq + 1, kind: message.kind, body: message.body)])
                seq += 1
            } catch {
                logger.warning(
                    "Relay to other instances failed; \(message.consequence)", metadata: ["error": "\(error)", "kind": "\(message.kind)"])
                continue
            }
            do {
                try await ring(Self.logKind)
            } catch {
                logger.debug("NOTIFY failed; other instances read the message when they next poll", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Deletes every instance's messages older than `retention`, once a minute.
    private func pruneOldMessages() async {
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: .seconds(60)) })) != nil {
            do {
                try await store.transaction([
                    SQLStatement("DELETE FROM relay_log WHERE created_at < ?", .integer(Date().millisecondsSince1970 - Self.retention))
                ])
            } catch {
                logger.debug("Pruning the relay log failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// What each kind of relayed message is handed to (shared with the reader of `relay_log`).
private final class MessageHandlers: Sendable {
    typealias Handler = @Sendable (_ body: String) async -> Void
    private let byKind = Mutex<[String: Handler]>([:])

    subscript(kind: String) -> Handler? {
        get { byKind.withLock { $0[kind] } }
        set { byKind.withLock { $0[kind] = newValue } }
    }
}
