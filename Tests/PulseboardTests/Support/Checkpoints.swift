import Foundation
import Logging
import Synchronization
import Testing

/// Where each test inside `TestApp.run` is: its last checkpoint and since when. The suite takes
/// one or two minutes; if it is still running after five, the tests not yet done are printed
/// with their checkpoints, so that a run that hangs (CI stops it after ten) says which await
/// never ended.
enum Checkpoints {
    private struct Entry {
        var test: String
        var checkpoint: String
        var since: ContinuousClock.Instant
    }

    private static let entries = Mutex<[UUID: Entry]>([:])
    private static let watchdog = Mutex<Task<Void, Never>?>(nil)
    @TaskLocal private static var current: UUID?

    /// Runs `body` as a tracked test, starting at checkpoint `first`.
    static func track<T>(_ first: String, _ body: () async throws -> T) async throws -> T {
        startWatchdog()
        let id = UUID()
        let test = Test.current.map { "\($0.name) (\($0.sourceLocation.fileName):\($0.sourceLocation.line))" } ?? "?"
        entries.withLock { $0[id] = Entry(test: test, checkpoint: first, since: .now) }
        defer { _ = entries.withLock { $0.removeValue(forKey: id) } }
        return try await $current.withValue(id) { try await body() }
    }

    /// Records that the current tracked test reached `checkpoint`.
    static func reached(_ checkpoint: String) {
        guard let id = current else { return }
        entries.withLock { entries in
            entries[id]?.checkpoint = checkpoint
            entries[id]?.since = .now
        }
    }

    private static func startWatchdog() {
        watchdog.withLock { task in
            guard task == nil else { return }
            task = Task.detached {
                try? await Task.sleep(for: .seconds(300))
                let now = ContinuousClock.now
                let report = entries.withLock { $0.values.map { "  \($0.test): at \"\($0.checkpoint)\" for \(now - $0.since)" } }.sorted()
                let text = "*** Tests still running after 5 minutes, with their last checkpoint:\n" + report.joined(separator: "\n") + "\n"
                FileHandle.standardError.write(Data(text.utf8))
            }
        }
    }
}

/// A logger that prints what `TestApp.logger` prints (warnings and worse) and turns the service
/// group's steps of a graceful shutdown into checkpoints, so that a stop that never ends names
/// the service it waits for.
struct CheckpointLogHandler: LogHandler {
    private var printed = StreamLogHandler.standardOutput(label: "pulseboard-test")
    var logLevel: Logger.Level = .debug
    var metadataProvider: Logger.MetadataProvider?

    static var logger: Logger { Logger(label: "pulseboard-test") { _ in CheckpointLogHandler() } }

    var metadata: Logger.Metadata {
        get { printed.metadata }
        set { printed.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { printed[metadataKey: key] }
        set { printed[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        let message = event.message.description
        if ["Triggering graceful shutdown for service", "Service finished", "Caught cancellation."].contains(message) {
            Checkpoints.reached("stopping the app: \(message) \(event.metadata?["sl-service"].map { "\($0)" } ?? "")")
        }
        if event.level >= .warning { printed.log(event: event) }
    }
}
