import Synchronization

/// The users that requests were checked against in the last moment. Every authenticated request
/// needs its user as the database has them now (a demotion, deletion, logout or password change
/// ends access at once); reading the row each time costs a database round trip per request.
/// Kept for `lifetime` at most, and forgotten all at once whenever someone's access changes (the
/// AccessChanges doorbell, which other instances ring by NOTIFY): so the lifetime only bounds
/// what no doorbell announces, such as a change made with the command line.
package final class RecentUsers: Sendable {
    private struct Entry {
        var user: User?
        var readAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [Int64: Entry] = [:]
        /// Raised by every `forgetAll`, so that a read that began before it is not kept.
        var epoch: UInt64 = 0
    }

    let lifetime: Duration
    let capacity: Int
    private let state = Mutex(State())

    package init(lifetime: Duration, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The user with `id` (nil: there is none), from a read younger than `lifetime` or from `read`.
    package func user(id: Int64, read: () async throws -> User?) async throws -> User? {
        let now = ContinuousClock.now
        let (cached, epoch) = state.withLock { state in
            (state.entries[id].flatMap { now - $0.readAt < lifetime ? $0 : nil }, state.epoch)
        }
        if let cached { return cached.user }
        let user = try await read()
        state.withLock { state in
            guard state.epoch == epoch, lifetime > .zero else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[id] = Entry(user: user, readAt: now)
        }
        return user
    }

    /// Someone's access changed: every user is read again on their next request.
    package func forgetAll() {
        state.withLock { state in
            state.entries.removeAll(keepingCapacity: true)
            state.epoch += 1
        }
    }
}
