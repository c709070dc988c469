import PulseboardDatabase
import Synchronization

/// A doorbell: someone's access changed (a role, a password, a logout, a deletion, a removal
/// from a class), so every live session re-checks its user and channels at once and the users
/// requests were checked against are read again. The ring says nothing about whom it concerns;
/// each session finds out for itself with the same checks a new connection gets. `changed()`
/// rings on every instance.
package final class AccessChanges: Sendable {
    private let watchers = Mutex<[UInt64: @Sendable () -> Void]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let relay: InstanceRelay?

    package init(relay: InstanceRelay?) {
        self.relay = relay
        relay?.register("access") { [weak self] _ in self?.signal() }
    }

    /// Calls `onChange` after every change until `stopWatching`; it must return quickly (say,
    /// yield into the session's stream).
    package func watch(_ onChange: @escaping @Sendable () -> Void) -> UInt64 {
        let id = nextID.add(1, ordering: .relaxed).newValue
        watchers.withLock { $0[id] = onChange }
        return id
    }

    func stopWatching(_ id: UInt64) {
        _ = watchers.withLock { $0.removeValue(forKey: id) }
    }

    /// Someone's access changed: rings this instance's sessions and the other instances'.
    package func changed() {
        signal()
        relay?.send("access", consequence: "other instances re-check on the next subscribe")
    }

    /// Rings the servers that share `store` (PostgreSQL) after a change made without one: the
    /// command line's. SQLite has no way to reach a server from another process.
    package static func announce(in store: any Database) async throws {
        guard let notifications = store.notifications else { return }
        try await InstanceRelay.announce("access", in: store, via: notifications)
    }

    private func signal() {
        for watcher in watchers.withLock({ Array($0.values) }) { watcher() }
    }
}
