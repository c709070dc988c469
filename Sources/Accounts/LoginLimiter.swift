import Foundation
import PulseboardKernel
import Synchronization

/// Limits failed logins per account and per client address within a sliding window, so that a
/// password cannot be guessed quickly and one address cannot try many accounts.
///
/// It lives in memory, per instance: with several instances each allows its own quota.
public final class LoginLimiter: Sendable {
    public struct Limits: Sendable {
        public var perAccount: Int
        public var perAddress: Int
        public var window: Duration

        public init(perAccount: Int = 5, perAddress: Int = 20, window: Duration = .seconds(900)) {
            self.perAccount = perAccount
            self.perAddress = perAddress
            self.window = window
        }
    }

    private let limits: Limits
    private let failures = Mutex<[String: [Date]]>([:])

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Seconds to wait before another attempt, or nil when one is allowed now.
    func retryAfter(account: String, address: String, now: Date = Date()) -> Int? {
        failures.withLock { failures in
            let waits = [
                wait(failures["account:\(account)"], limit: limits.perAccount, now: now),
                wait(failures["address:\(address)"], limit: limits.perAddress, now: now),
            ].compactMap { $0 }
            return waits.max()
        }
    }

    func recordFailure(account: String, address: String, now: Date = Date()) {
        failures.withLock { failures in
            if failures.count > 10_000 {
                // Keeps memory bounded under a spray of addresses: forget what the window has passed.
                failures = failures.filter { $0.value.contains { now.timeIntervalSince($0) < limits.window.seconds } }
            }
            for key in ["account:\(account)", "address:\(address)"] {
                let recent = (failures[key] ?? []).filter { now.timeIntervalSince($0) < limits.window.seconds }
                failures[key] = recent + [now]
            }
        }
    }

    func recordSuccess(account: String) {
        _ = failures.withLock { $0.removeValue(forKey: "account:\(account)") }
    }

    private func wait(_ attempts: [Date]?, limit: Int, now: Date) -> Int? {
        let recent = (attempts ?? []).filter { now.timeIntervalSince($0) < limits.window.seconds }
        guard recent.count >= limit, let oldest = recent.min() else { return nil }
        return max(1, Int((limits.window.seconds - now.timeIntervalSince(oldest)).rounded(.up)))
    }
}
