import Foundation
import Logging
import ServiceLifecycle

/// Applies retention every hour: points older than the retention period, idempotency keys past
/// their time to live, expired sessions; and removes submission files no version names.
struct MaintenanceService: Service {
    let store: any Store
    let retention: Duration
    let idempotencyLifetime: Duration
    let submissions: Submissions
    let logger: Logger

    func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            do {
                try await store.prune(
                    pointsBefore: now.addingTimeInterval(-retention.seconds),
                    idempotencyKeysBefore: now.addingTimeInterval(-idempotencyLifetime.seconds),
                    now: now
                )
            } catch {
                logger.warning("Retention pass failed", metadata: ["error": "\(error)"])
            }
            do {
                try await submissions.sweepFiles(now: now)
            } catch {
                logger.warning("Sweeping submission files failed", metadata: ["error": "\(error)"])
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
            } catch {
                return
            }
        }
    }
}
