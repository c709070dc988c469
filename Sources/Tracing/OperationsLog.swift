import Foundation
import Logging
import PulseboardDatabase
import PulseboardKernel
import ServiceLifecycle
import Synchronization

/// The request log and the task progress log (seed 003's `api_logs` and `task_progress_logs`),
/// written in the background: recording is a push onto a bounded in-memory queue, so it never
/// slows the request or the work it records. The queue is written every second, in batches of
/// `batchSize`, one transaction each; when it is full, new entries are dropped and counted
/// (`pulseboard_operations_log_dropped_total`), never waited for.
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

    package init(store: any Database, telemetry: Telemetry, logger: Logger, capacity: Int = 20_000) {
        self.store = store
        self.telemetry = telemetry
        self.logger = logger
        self.capacity = capacity
    }

    package func record(_ entry: Entry) {
        let taken = queue.withLock { queue in
            guard queue.count < capacity else { return false }
            queue.append(entry)
            return true
        }
        if !taken { telemetry.operationsLogDropped.increment() }
    }

    /// Every second, what was recorded; at shutdown, what is left.
    package func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            await flush()
        }
        await flush()
    }

    /// Writes what is queued now (tests call it to read what was recorded). Entries recorded
    /// meanwhile wait for the next call, so a steady stream cannot keep it writing.
    package func flush() async {
        var left = queue.withLock { $0.count }
        while left > 0, case let batch = take(), !batch.isEmpty {
            left -= batch.count
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
