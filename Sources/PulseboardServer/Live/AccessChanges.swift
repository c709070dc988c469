import Synchronization

/// A doorbell for open WebSockets: someone's access changed (a role, a password, a logout, a
/// deletion, a removal from a class), so every live session re-checks its user and channels at
/// once. The ring says nothing about whom it concerns; each session finds out for itself with
/// the same checks a new connection gets. `signal()` rings this instance's sessions; the caller
/// also relays it to the other instances (`PostgresFanout`).
final class AccessChanges: Sendable {
    private let watchers = Mutex<[UInt64: AsyncStream<Void>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// A stream that yields after every change (several changes before a re-check coalesce).
    func watch() -> (id: UInt64, changes: AsyncStream<Void>) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        watchers.withLock { $0[id] = continuation }
        return (id, stream)
    }

    func stopWatching(_ id: UInt64) {
        watchers.withLock { $0.removeValue(forKey: id) }?.finish()
    }

    func signal() {
        for watcher in watchers.withLock({ Array($0.values) }) { watcher.yield() }
    }
}
