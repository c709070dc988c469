import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Reads what the other instances append to a shared log (numbered per instance, in commit order)
/// and hands each entry over once, in order. It reads when rung with an instance's name (its
/// NOTIFY), everything after LISTEN reconnects (`ringAll`: notifications sent meanwhile are lost),
/// and everything every two seconds (a NOTIFY that never came). One task does all the reading,
/// so entries are delivered in their order and never twice. A failed read is tried again at the
/// next ring: what was not read is still in the log.
package final class InstanceLogFollower<Entry: Sendable>: Sendable {
    /// An instance's entries after `after`, appended at or after `notBefore` (milliseconds), oldest first.
    package typealias Fetch = @Sendable (_ instance: String, _ after: Int64, _ notBefore: Int64) async throws -> [(seq: Int64, entry: Entry)]
    /// The last sequence number of every other instance that appended since `notBefore`.
    package typealias Latest = @Sendable (_ notBefore: Int64) async throws -> [String: Int64]

    private enum Pending {
        case instances(Set<String>)
        case all
    }

    let fetch: Fetch
    let latest: Latest
    let deliver: @Sendable (_ instance: String, _ entry: Entry) async -> Void
    let logger: Logger
    /// Only entries appended after this instance started are delivered (older ones are history).
    let startedMs = Date().millisecondsSince1970
    private let pending = Mutex(Pending.instances([]))
    private let doorbell: AsyncStream<Void>
    private let ringer: AsyncStream<Void>.Continuation

    package init(fetch: @escaping Fetch, latest: @escaping Latest, logger: Logger, deliver: @escaping @Sendable (String, Entry) async -> Void) {
        self.fetch = fetch
        self.latest = latest
        self.deliver = deliver
        self.logger = logger
        (doorbell, ringer) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// `instance` appended something.
    package func ring(instance: String) {
        pending.withLock { pending in
            if case .instances(var names) = pending {
                names.insert(instance)
                pending = .instances(names)
            }
        }
        ringer.yield()
    }

    /// Any instance may have appended something.
    package func ringAll() {
        pending.withLock { $0 = .all }
        ringer.yield()
    }

    /// Reads after every ring, and every two seconds, until shutdown.
    package func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: .seconds(2)) })) != nil {
                    self.ringAll()
                }
                self.ringer.finish()
            }
            var lastSeen: [String: Int64] = [:]
            for await _ in doorbell.cancelOnGracefulShutdown() {
                let rung = pending.withLock { rung in
                    defer { rung = .instances([]) }
                    return rung
                }
                do {
                    let instances: Set<String>
                    switch rung {
                    case .instances(let names): instances = names
                    case .all: instances = Set(try await latest(startedMs).filter { $0.value > lastSeen[$0.key] ?? 0 }.keys)
                    }
                    for instance in instances.sorted() {
                        try await readAll(of: instance, after: &lastSeen)
                    }
                } catch {
                    logger.debug("Reading the other instances' log failed; tried again at the next ring", metadata: ["error": "\(error)"])
                }
            }
            group.cancelAll()
        }
    }

    private func readAll(of instance: String, after lastSeen: inout [String: Int64]) async throws {
        while true {
            let entries = try await fetch(instance, lastSeen[instance] ?? 0, startedMs)
            guard let last = entries.last else { return }
            for entry in entries { await deliver(instance, entry.entry) }
            lastSeen[instance] = last.seq
        }
    }
}
