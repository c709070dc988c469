import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Live data across instances sharing one PostgreSQL. Each instance logs its commits, numbered in
/// commit order, in `live_log` (inside the ingest transaction) and then announces "I advanced"
/// with a NOTIFY that carries only its instance id, sent outside the transaction and coalesced
/// (at most one in flight, one pending). The others LISTEN, fetch the log entries after the last
/// sequence they saw from that instance, and publish them to their own hub. A LISTEN connection
/// that drops is re-established with backoff and followed by a catch-up over every instance, so
/// nothing logged during the gap is missed; a slow periodic catch-up covers lost notifications.
///
/// Class views travel the same way, lighter: after applying learning events an instance
/// notifies which students' cards changed (`cards:` + class ids and emails, never the cards);
/// the others read those cards from the shared database and publish them to their own
/// `class:<id>` subscribers. A card notification lost while LISTEN reconnects is made good by the
/// student's next event or a reload of the page. Notices (announcements, grades) travel whole
/// (`notice:` + the notice), as the other instances have nothing to read them from. A change of
/// someone's access travels as `access:` + the instance id, and makes every open WebSocket of the
/// other instances re-check its access.
final class PostgresFanout: Service {
    static let channel = "pulseboard_live"

    let store: PostgresStore
    let hub: Hub
    let progress: ClassProgress
    let telemetry: Telemetry
    let accessChanges: AccessChanges
    let logger: Logger
    /// Only entries logged after this instance started are relayed (older ones are history).
    let startedMs = Date().millisecondsSince1970
    private let lastSeen = Mutex<[String: Int64]>([:])

    init(store: PostgresStore, hub: Hub, progress: ClassProgress, telemetry: Telemetry, accessChanges: AccessChanges, logger: Logger) {
        self.store = store
        self.hub = hub
        self.progress = progress
        self.telemetry = telemetry
        self.accessChanges = accessChanges
        self.logger = logger
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.announce() }
            group.addTask { await self.listen() }
            group.addTask { await self.pollPeriodically() }
            await group.waitForAll()
        }
    }

    /// NOTIFY after commits, coalesced: the doorbell holds at most one pending ring.
    private func announce() async {
        for await _ in store.committed.cancelOnGracefulShutdown() {
            do {
                try await store.client.query("SELECT pg_notify(\(Self.channel), \(store.instanceID))", logger: logger)
                telemetry.liveNotificationSent()
            } catch {
                logger.debug("NOTIFY failed; other instances catch up by polling", metadata: ["error": "\(error)"])
            }
        }
    }

    private func listen() async {
        var backoff: Duration = .milliseconds(100)
        while !Task.isCancelledOrShuttingDown {
            do {
                try await store.client.withConnection { connection in
                    let notifications = try await connection.listen(Self.channel)
                    // Whatever was logged while we were not listening.
                    await catchUpAll()
                    for try await notification in notifications.cancelOnGracefulShutdown() where notification.payload != store.instanceID {
                        if notification.payload.hasPrefix(Self.accessPrefix) {
                            if notification.payload != Self.accessPrefix + store.instanceID { accessChanges.signal() }
                        } else if let cards = CardsChanged(notification.payload) {
                            if cards.from != store.instanceID { await publish(cards) }
                        } else if let relayed = RelayedNotice(notification.payload) {
                            if relayed.from != store.instanceID { hub.publish(channel: relayed.channel, data: relayed.notice) }
                        } else {
                            await catchUp(instance: notification.payload)
                        }
                    }
                }
                backoff = .milliseconds(100)
            } catch {
                if Task.isCancelledOrShuttingDown { return }
                let wait = backoff
                logger.warning("LISTEN connection lost; reconnecting", metadata: ["error": "\(error)", "retry_in": "\(wait)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Tells the other instances which students' cards changed (in notifications of at most
    /// about 7 KB: PostgreSQL's limit is 8,000 bytes).
    func cardsChanged(_ touched: [Int64: Set<String>]) {
        var chunks: [CardsChanged] = []
        var current = CardsChanged(from: store.instanceID, cards: [])
        for (classID, emails) in touched {
            for email in emails {
                current.cards.append(.init(classId: classID, email: email))
                if current.cards.count == 50 {
                    chunks.append(current)
                    current.cards = []
                }
            }
        }
        if !current.cards.isEmpty { chunks.append(current) }
        guard !chunks.isEmpty else { return }
        Task {
            for chunk in chunks {
                do {
                    try await store.client.query("SELECT pg_notify(\(Self.channel), \(chunk.payload))", logger: logger)
                } catch {
                    logger.debug("Card NOTIFY failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    static let accessPrefix = "access:"

    /// Rings the other instances' open WebSockets: someone's access changed.
    func relayAccessChanged() {
        Task {
            do {
                try await store.client.query("SELECT pg_notify(\(Self.channel), \(Self.accessPrefix + store.instanceID))", logger: logger)
            } catch {
                logger.warning("Access-change NOTIFY failed; other instances re-check on the next subscribe", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Sends a notice to the other instances' subscribers of `channel`.
    func relay(_ notice: Notice, on channel: String) {
        let payload = RelayedNotice(from: store.instanceID, channel: channel, notice: notice).payload
        guard payload.utf8.count < 8_000 else {
            logger.warning("Notice too long for NOTIFY; other instances miss it", metadata: ["channel": "\(channel)"])
            return
        }
        Task {
            do {
                try await store.client.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
            } catch {
                logger.warning("Notice NOTIFY failed; other instances miss it", metadata: ["error": "\(error)", "channel": "\(channel)"])
            }
        }
    }

    private func publish(_ changed: CardsChanged) async {
        for (classID, cards) in Dictionary(grouping: changed.cards, by: \.classId) {
            guard let students = try? await progress.students(classID: classID, emails: cards.map(\.email)) else { continue }
            for student in students {
                hub.publish(channel: LiveChannels.classView(classID), data: ClassUpdate.student(student))
            }
        }
    }

    private func pollPeriodically() async {
        while !Task.isCancelledOrShuttingDown {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
            } catch {
                return
            }
            await catchUpAll()
        }
    }

    private func catchUpAll() async {
        do {
            for (instance, latest) in try await store.liveInstances(since: startedMs) where latest > (lastSeen.withLock { $0[instance] } ?? 0) {
                await catchUp(instance: instance)
            }
        } catch {
            logger.debug("Live catch-up failed", metadata: ["error": "\(error)"])
        }
    }

    /// Relays an instance's entries after the last one seen, in order. Serialised per call site
    /// by the lock around `lastSeen`: an entry is published only if it is the next one.
    private func catchUp(instance: String) async {
        do {
            while true {
                let after = lastSeen.withLock { $0[instance] } ?? 0
                let entries = try await store.liveLog(instance: instance, after: after, notBefore: startedMs)
                guard !entries.isEmpty else { return }
                for entry in entries {
                    let isNext = lastSeen.withLock { seen -> Bool in
                        guard entry.seq > (seen[instance] ?? 0) else { return false }
                        seen[instance] = entry.seq
                        return true
                    }
                    if isNext { hub.publish(entry.points) }
                }
            }
        } catch {
            logger.debug("Live fetch failed", metadata: ["error": "\(error)", "instance": "\(instance)"])
        }
    }
}

/// A card notification: `cards:` followed by JSON naming the instance and the changed cards.
struct CardsChanged: Codable, Sendable {
    struct Card: Codable, Sendable {
        var classId: Int64
        var email: String
    }

    static let prefix = "cards:"
    var from: String
    var cards: [Card]

    init(from: String, cards: [Card]) {
        self.from = from
        self.cards = cards
    }

    init?(_ payload: String) {
        guard payload.hasPrefix(Self.prefix),
            let decoded = try? JSONDecoder().decode(CardsChanged.self, from: Data(payload.dropFirst(Self.prefix.count).utf8))
        else { return nil }
        self = decoded
    }

    var payload: String {
        Self.prefix + String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A notice for other instances: `notice:` followed by JSON (at most 8,000 bytes, PostgreSQL's
/// payload limit; a longer one, possible only for non-ASCII announcements near 2,000
/// characters, stays on its instance with a warning in the log).
struct RelayedNotice: Codable, Sendable {
    static let prefix = "notice:"
    var from: String
    var channel: String
    var notice: Notice

    init(from: String, channel: String, notice: Notice) {
        self.from = from
        self.channel = channel
        self.notice = notice
    }

    init?(_ payload: String) {
        guard payload.hasPrefix(Self.prefix),
            let decoded = try? JSONDecoder().decode(RelayedNotice.self, from: Data(payload.dropFirst(Self.prefix.count).utf8))
        else { return nil }
        self = decoded
    }

    var payload: String {
        Self.prefix + String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self)
    }
}
