import Synchronization

/// A doorbell for open WebSockets: someone's access changed (a role, a password, a logout, a
/// deletion, a removal from a class), so every live session re-checks its user and channels at
/// once. The ring says nothing about whom it concerns; each session finds out for itself with
/// the same checks a new connection gets. `signal()` rings this instance's sessions; the caller
/// also relays it to the other instances (`PostgresFanout`).
final class AccessChanges: Sendable {
    private let watchers = Mutex<[UInt64: @Sendable () -> Void]>([:])
    private let nextID = Atomic<UInt64>(0)

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

    func signal() {
        for watcher in watchers.withLock({ Array($0.values) }) { watcher() }
    }
}
