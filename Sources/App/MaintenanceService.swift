import Foundation
import Logging
import PulseboardKernel
import ServiceLifecycle

/// Runs the features' housekeeping every hour: retention of points, rollups and idempotency
/// keys, expired sessions, submission files no version names. A pass that fails is logged and
/// tried again an hour later; the others still run.
package struct MaintenanceService: Service {
    struct Chore: Sendable {
        var name: String
        var run: @Sendable (_ now: Date) async throws -> Void
    }

    let chores: [Chore]
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
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
            } catch {
                return
            }
        }
    }
}
