import Foundation
import Logging
import PulseboardKernel
import PulseboardLive
import ServiceLifecycle
import Synchronization

/// Committed points across instances sharing one PostgreSQL. Each instance logs its commits,
/// numbered in commit order, in `live_log` (inside the ingest transaction) and then announces
/// "I advanced" with a `points` relay message that carries nothing else, sent outside the
/// transaction and coalesced (at most one in flight, one pending). The others fetch the log
/// entries after the last sequence they saw from that instance and publish them to their own
/// hub. After a LISTEN reconnect they catch up over every instance, so nothing logged during the
/// gap is missed; a slow periodic catch-up covers lost notifications.
package final class PointRelay: Service {
    let log: any LiveLog
    let relay: InstanceRelay
    let hub: Hub
    let logger: Logger
    /// Only entries logged after this instance started are relayed (older ones are history).
    let startedMs = Date().millisecondsSince1970
    private let lastSeen = Mutex<[String: Int64]>([:])

    package init(log: any LiveLog, relay: InstanceRelay, hub: Hub, logger: Logger) {
        self.log = log
        self.relay = relay
        self.hub = hub
        self.logger = logger
        relay.register("points", connected: { [weak self] in await self?.catchUpAll() }) { [weak self] from, _ in
            await self?.catchUp(instance: from)
        }
    }

    package func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.announce() }
            group.addTask { await self.pollPeriodically() }
            await group.waitForAll()
        }
    }

    /// Announces commits, coalesced: the doorbell holds at most one pending ring.
    private func announce() async {
        for await _ in log.committed.cancelOnGracefulShutdown() {
            do {
                try await relay.sendNow("points")
            } catch {
                logger.debug("NOTIFY failed; other instances catch up by polling", metadata: ["error": "\(error)"])
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
            for (instance, latest) in try await log.liveInstances(since: startedMs) where latest > (lastSeen.withLock { $0[instance] } ?? 0) {
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
                let entries = try await log.liveLog(instance: instance, after: after, notBefore: startedMs, limit: 500)
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
