import Foundation
import Logging
import PulseboardKernel
import PulseboardLive
import ServiceLifecycle

/// Committed points across instances sharing one PostgreSQL. Each instance logs its commits,
/// numbered in commit order, in `live_log` (inside the ingest transaction) and then announces
/// "I advanced" with a `points` NOTIFY that carries nothing else, sent outside the transaction
/// and coalesced (at most one in flight, one pending). The others read the log after the last
/// entry they saw from that instance (`InstanceLogFollower`) and publish it to their own hub.
package final class PointRelay: Service {
    let log: any LiveLog
    let relay: InstanceRelay
    let logger: Logger
    let follower: InstanceLogFollower<[MetricPoint]>

    package init(log: any LiveLog, relay: InstanceRelay, hub: Hub, logger: Logger) {
        self.log = log
        self.relay = relay
        self.logger = logger
        let follower = InstanceLogFollower<[MetricPoint]>(
            fetch: { instance, after, notBefore in
                try await log.liveLog(instance: instance, after: after, notBefore: notBefore, limit: 500).map { ($0.seq, $0.points) }
            },
            latest: { notBefore in
                Dictionary(try await log.liveInstances(since: notBefore).map { ($0.instance, $0.seq) }) { first, _ in first }
            },
            logger: logger
        ) { _, points in hub.publish(points) }
        self.follower = follower
        relay.registerDoorbell("points", connected: { follower.ringAll() }) { from in follower.ring(instance: from) }
    }

    package func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.announce() }
            await follower.run()
            group.cancelAll()
        }
    }

    /// Announces commits, coalesced: the doorbell holds at most one pending ring.
    private func announce() async {
        for await _ in log.committed.cancelOnGracefulShutdown() {
            do {
                try await relay.ring("points")
            } catch {
                logger.debug("NOTIFY failed; other instances catch up by polling", metadata: ["error": "\(error)"])
            }
        }
    }
}
