import Foundation
import Logging
import PulseboardKernel
import PulseboardLive
import ServiceLifecycle
import Synchronization

/// The single path to storage for ingested data (DESIGN.md, "the writer"): requests put their
/// batch in a bounded queue and wait; one task takes everything queued, commits it in one
/// transaction (group commit), then answers every waiting request and hands the committed points
/// to the hub. One writer per instance keeps commits, and so live sequence numbers, in order.
public final class Writer: Service {
    public enum Failure: Error {
        /// The queue holds as many points as it may: answer 503 and let the client retry.
        case queueFull
        /// The server is shutting down and takes no more writes.
        case shuttingDown
        /// The transaction failed; nothing of the batch was stored.
        case commitFailed(any Error)
    }

    private struct Job {
        let batch: IngestBatch
        let continuation: CheckedContinuation<CommitOutcome, any Error>
    }

    private struct State {
        var jobs: [Job] = []
        var queuedPoints = 0
        var accepting = true
    }

    let store: any MetricsStore
    let hub: Hub
    let telemetry: Telemetry
    let logger: Logger
    /// Points that may wait in the queue before submissions are refused.
    let capacity: Int
    /// Points committed in one transaction at most (a full queue is committed in several).
    let maxPointsPerCommit: Int

    private let state = Mutex(State())
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    package init(store: any MetricsStore, hub: Hub, telemetry: Telemetry, logger: Logger, capacity: Int, maxPointsPerCommit: Int = 50_000) {
        self.store = store
        self.hub = hub
        self.telemetry = telemetry
        self.logger = logger
        self.capacity = capacity
        self.maxPointsPerCommit = maxPointsPerCommit
        (doorbell, ring) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a batch and returns once it is committed (or throws `Failure`).
    public func submit(_ batch: IngestBatch) async throws -> CommitOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let refusal: Failure? = state.withLock { state in
                guard state.accepting else { return .shuttingDown }
                // An empty queue always takes a batch, however large, so no valid batch is refused forever.
                guard state.queuedPoints == 0 || state.queuedPoints + batch.size <= capacity else { return .queueFull }
                state.jobs.append(Job(batch: batch, continuation: continuation))
                state.queuedPoints += batch.size
                telemetry.setQueuedPoints(state.queuedPoints)
                return nil
            }
            if let refusal {
                continuation.resume(throwing: refusal)
            } else {
                ring.yield()
            }
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in doorbell {
                await commitQueued()
            }
        } onGracefulShutdown: {
            self.state.withLock { $0.accepting = false }
            self.ring.finish()
        }
        // Whatever was accepted before shutdown is still committed and answered.
        await commitQueued()
    }

    private func commitQueued() async {
        while let jobs = takeJobs() {
            await commit(jobs)
        }
    }

    private func takeJobs() -> [Job]? {
        state.withLock { state in
            guard !state.jobs.isEmpty else { return nil }
            var taken = 0
            var count = 0
            for job in state.jobs {
                if count > 0 && taken + job.batch.size > maxPointsPerCommit { break }
                taken += job.batch.size
                count += 1
            }
            let jobs = Array(state.jobs.prefix(count))
            state.jobs.removeFirst(count)
            state.queuedPoints -= taken
            telemetry.setQueuedPoints(state.queuedPoints)
            return jobs
        }
    }

    private func commit(_ jobs: [Job]) async {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let outcomes = try await store.commit(jobs.map(\.batch), now: Date())
            var committed: [MetricPoint] = []
            for (job, outcome) in zip(jobs, outcomes) {
                guard case .stored(_, let newRows) = outcome else { continue }
                committed.append(contentsOf: job.batch.points)
                job.batch.committed?(newRows)
            }
            telemetry.recordCommit(batches: jobs.count, points: committed.count, duration: clock.now - start)
            hub.publish(committed)
            for (job, outcome) in zip(jobs, outcomes) {
                job.continuation.resume(returning: outcome)
            }
        } catch {
            logger.error("Commit failed", metadata: ["error": "\(error)", "batches": "\(jobs.count)"])
            for job in jobs {
                job.continuation.resume(throwing: Failure.commitFailed(error))
            }
        }
    }
}
