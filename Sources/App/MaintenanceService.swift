import Foundation
import Logging
import PulseboardKernel
import PulseboardTracing
import ServiceLifecycle

/// Runs housekeeping chores every `interval`: hourly the retention of points, rollups and
/// idempotency keys, expired sessions, submission files no version names; every minute the
/// compaction of chunks. A chore that fails is logged and tried again on the next pass; the
/// others still run. Each pass of a chore is a task in the task progress log, under a trace id
/// of its own: START, then SUCCESS with what it did, or FAILED with the error.
package struct MaintenanceService: Service {
    struct Chore: Sendable {
        var name: String
        /// Returns a summary of what it did, for the task log.
        var run: @Sendable (_ now: Date) async throws -> JSONValue?
    }

    let chores: [Chore]
    let interval: Duration
    let log: OperationsLog?
    let logger: Logger

    package func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            for chore in chores {
                var task = TaskRecorder(log: log, traceID: TraceID.generate(), task: chore.name)
                do {
                    _ = try await task.step("pass", input: ["at": .string(Timestamp.format(now))]) {
                        try await chore.run(now)
                    } output: {
                        $0
                    }
                } catch {
                    logger.warning("Housekeeping failed", metadata: ["chore": "\(chore.name)", "error": "\(error)"])
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}
