import Foundation
import Logging
import PulseboardKernel
import ServiceLifecycle

/// Runs housekeeping chores every `interval`: hourly the retention of points, rollups and
/// idempotency keys, expired sessions, submission files no version names; every minute the
/// compaction of chunks. A chore that fails is logged and tried again on the next pass; the
/// others still run.
package struct MaintenanceService: Service {
    struct Chore: Sendable {
        var name: String
        var run: @Sendable (_ now: Date) async throws -> Void
    }

    let chores: [Chore]
    let interval: Duration
    let logger: Logger

    package func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            for chore in chores {
                do {
                    try await chore.run(now)
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
