import Foundation
import Logging
import PulseboardDatabase
import PulseboardKernel
import ServiceLifecycle
import Synchronization

/// The request log and the task progress log (seed 003's `api_logs` and `task_progress_logs`),
/// written in the background: recording is a push onto a bounded in-memory queue, so it never
/// slows the request or the work it records. The queue is written in batches, one transaction
/// each, every second or sooner when it fills; when it is full, new entries are dropped and
/// counted (`pulseboard_operations_log_dropped_total`), never waited for.
package final class OperationsLog: Service {
    package enum Entry: Sendable {
        case request(RequestRecord)
        case step(TaskStep)
    }

    let store: any Database
    let telemetry: Telemetry
    let logger: Logger
    let capacity: Int
    /// Entries written in one transaction at most.
    let batchSize = 500
    private let queue = Mutex<[Entry]>([])
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    package init(store: any Database, telemetry: Telemetry, logger: Logger, capacity: Int = 20_000) {
        self.store = store
        self.telemetry = telemetry
        self.logger = logger
        self.capacity = capacity
        (doorbell, ring) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    package func record(_ entry: Entry) {
        let (taken, count) = queue.withLock { queue in
            guard queue.count < capacity else { return (false, queue.count) }
            queue.append(entry)
            return (true, queue.count)
        }
        guard taken else {
            telemetry.operationsLogDropped.increment()
            return
        }
        if count >= batchSize { ring.yield() }
    }

    package func run() async throws {
        // Every second, or when a batch is full; at shutdown, what is left.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelledOrShuttingDown {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                    self.ring.yield()
                }
                self.ring.finish()
            }
            for await _ in doorbell {
                await flush()
            }
            await flush()
        }
    }

    /// Writes everything queued so far (tests call it to read what was recorded).
    package func flush() async {
        while case let batch = take(), !batch.isEmpty {
            await write(batch)
        }
    }

    private func take() -> [Entry] {
        queue.withLock { queue in
            let batch = Array(queue.prefix(batchSize))
            queue.removeFirst(batch.count)
            return batch
        }
    }

    /// One transaction; a failure is retried once after a second (the database may be restarting),
    /// then the batch is dropped and counted: a log must not pile up behind an outage.
    private func write(_ batch: [Entry]) async {
        var requests: [RequestRecord] = []
        var steps: [TaskStep] = []
        for entry in batch {
            switch entry {
            case .request(let request): requests.append(request)
            case .step(let step): steps.append(step)
            }
        }
        let statements = [RequestRecord.insert(requests), TaskStep.insert(steps)].compactMap { $0 }
        for attempt in 1...2 {
            do {
                try await store.transaction(statements)
                return
            } catch {
                // Cancelled (a test's server stopped without a graceful shutdown): nothing to retry.
                if Task.isCancelled { return }
                if attempt == 2 {
                    telemetry.operationsLogFailedWrites.increment()
                    logger.warning(
                        "Writing the request and task logs failed; the batch is dropped", metadata: ["entries": "\(batch.count)", "error": "\(error)"])
                } else {
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Retention: both logs' entries older than `before`.
    package static func prune(before: Date) -> [SQLStatement] {
        ["api_logs", "task_progress_logs"].map { SQLStatement("DELETE FROM \($0) WHERE created_at < ?", .integer(before.millisecondsSince1970)) }
    }
}
