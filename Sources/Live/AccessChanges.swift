import Synchronization

/// A doorbell for open WebSockets: someone's access changed (a role, a password, a logout, a
/// deletion, a removal from a class), so every live session re-checks its user and channels at
/// once. The ring says nothing about whom it concerns; each session finds out for itself with
/// the same checks a new connection gets. `changed()` rings the sessions of every instance.
package final class AccessChanges: Sendable {
    private let watchers = Mutex<[UInt64: @Sendable () -> Void]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let relay: InstanceRelay?

    package init(relay: InstanceRelay?) {
        self.relay = relay
        relay?.register("access") { [weak self] _, _ in self?.signal() }
    }

    /// Calls `onChange` after every change until `stopWatching`; it must return quickly (say,
    /// yield into the session's stream).
    func watch(_ onChange: @escaping @Sendable () -> Void) -> UInt64 {
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

    private func signal() {
        for watcher in watchers.withLock({ Array($0.values) }) { watcher() }
    }
}
