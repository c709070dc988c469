import ServiceLifecycle

extension Task where Success == Never, Failure == Never {
    /// Whether a long-running loop should stop: its task was cancelled or the server is shutting down.
    package static var isCancelledOrShuttingDown: Bool {
        isCancelled || isShuttingDownGracefully
    }
}
