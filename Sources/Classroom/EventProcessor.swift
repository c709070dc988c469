import Foundation
import Logging
import PulseboardDatabase
import PulseboardKernel
import PulseboardLive
import PulseboardTracing
import ServiceLifecycle
import Synchronization

/// Applies committed learning events to the class picture through the event router, then tells
/// the live view. The raw event is already stored when it gets here, so a failure loses nothing:
/// the batch is retried with backoff, then each event alone (so one bad event cannot hold up the
/// others), and what still fails stays unprocessed in the database, logged with its event id,
/// for the sweep that runs at start and every half minute.
package final class EventProcessor: Service {
    let store: any Database
    let router: EventRouter
    let telemetry: Telemetry
    let logger: Logger
    /// Where applied events and the touched students' new cards go.
    let channel: ClassChannel
    /// Waits before the retries of a failed batch.
    let retryDelays: [Duration]
    /// Where the steps of applying each request's events are recorded (nil: not recorded).
    let log: OperationsLog?
    /// The task the events of one ingest request make in the task log: received and stored by
    /// `EventsController`, applied here.
    static let taskName = "event processing"
    let sweepInterval: Duration = .seconds(30)
    /// The sweep leaves younger events to the instance that took them: two instances applying
    /// the same event at once would both see, say, no open help request and open two.
    let sweepAge: Duration = .seconds(60)

    /// Events committed and not yet taken, merged across requests so that the apply loop works
    /// on large batches. Bounded: beyond `maxPending` the sweep picks the rest up from the database.
    private let pending = Mutex<[LearningEvent]>([])
    private let maxPending = 100_000
    /// Events applied in one go at most (the writer's largest commit).
    private let maxBatch = 50_000
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    package init(
        store: any Database, router: EventRouter = .standard, telemetry: Telemetry, logger: Logger,
        channel: ClassChannel, log: OperationsLog? = nil, retryDelays: [Duration] = [.milliseconds(100), .milliseconds(500), .seconds(2)]
    ) {
        self.retryDelays = retryDelays
        self.log = log
        self.channel = channel
        self.store = store
        self.router = router
        self.telemetry = telemetry
        self.logger = logger
        (doorbell, ring) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Called after each commit with the events of a request that it stored for the first time.
    func eventsCommitted(_ events: [LearningEvent]) {
        guard !events.isEmpty else { return }
        let taken = pending.withLock { pending in
            guard pending.count + events.count <= maxPending else { return false }
            pending += events
            return true
        }
        if taken { ring.yield() }
    }

    /// What has been handed over, oldest first, at most `maxBatch` events.
    private func takePending() -> [LearningEvent] {
        pending.withLock { pending in
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            return batch
        }
    }

    package func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in self.doorbell.cancelOnGracefulShutdown() {
                    while case let events = self.takePending(), !events.isEmpty {
                        await self.apply(events)
                    }
                }
            }
            group.addTask {
                while !Task.isCancelledOrShuttingDown {
                    await self.sweep()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.sweepInterval) }
                }
            }
            await group.waitForAll()
        }
    }

    /// Applies what is stored but unprocessed (after a crash, a lost hand-off or failed attempts)
    /// and was received at least `olderThan` ago (default `sweepAge`).
    func sweep(olderThan age: Duration? = nil) async {
        do {
            try await store.transaction([EventLog.forgetDeletedClasses])
            while true {
                let before = Date().addingTimeInterval(-(age ?? sweepAge).seconds)
                let stored = try await store.select(EventLog.unprocessed(limit: 500, receivedBefore: before), as: EventLog.Stored.self)
                var events: [LearningEvent] = []
                var unreadable: [EventLog.Stored] = []
                for row in stored {
                    do { events.append(try row.event()) } catch {
                        unreadable.append(row)
                        logger.error("A stored event cannot be read; it stays in the log but is not applied", metadata: ["error": "\(error)"])
                    }
                }
                // Given up on, so that the events after them are applied.
                if !unreadable.isEmpty { try await store.transaction(EventLog.markProcessed(unreadable, rowsPerStatement: store.rowsPerStatement)) }
                guard !stored.isEmpty, await apply(events) else { return }
            }
        } catch {
            logger.warning("Sweeping unprocessed events failed", metadata: ["error": "\(error)"])
        }
    }

    /// Returns whether every event was applied. Each request whose events are among them gets
    /// its "applied" steps in the task log: one IN_PROGRESS per failed attempt, then SUCCESS, or
    /// FAILED naming how many events were left for the sweep.
    @discardableResult
    func apply(_ events: [LearningEvent]) async -> Bool {
        let totalPerTrace = Dictionary(grouping: events.compactMap(\.traceID)) { $0 }.mapValues(\.count)
        var tasks = Dictionary(
            uniqueKeysWithValues: totalPerTrace.keys.map { ($0, TaskRecorder(log: log, traceID: $0, task: Self.taskName, firstOrder: 3)) })
        var applied = events
        var lastError: (any Error)?
        let errors = await attempt(events, retries: retryDelays)
        for error in errors {
            for traceID in tasks.keys { tasks[traceID]?.record("applied", .inProgress, error: error) }
        }
        if errors.count == retryDelays.count + 1 {
            applied = []
            for event in events {
                if let error = await attempt([event], retries: []).last {
                    lastError = error
                    logger.error("Applying a learning event failed; it stays stored for a later attempt", metadata: ["event_id": "\(event.eventID)"])
                } else {
                    applied.append(event)
                }
            }
        }
        let appliedPerTrace = Dictionary(grouping: applied.compactMap(\.traceID)) { $0 }.mapValues(\.count)
        for (traceID, total) in totalPerTrace {
            let done = appliedPerTrace[traceID] ?? 0
            let output: JSONValue = ["applied": .integer(Int64(done)), "leftForSweep": .integer(Int64(total - done))]
            tasks[traceID]?.record("applied", done == total ? .success : .failed, output: output, error: done == total ? nil : lastError)
        }
        await channel.eventsApplied(applied)
        return applied.count == events.count
    }

    /// Tries to apply `events` in one transaction, again after each of `retries`; answers the
    /// errors of the failed tries (empty when the first succeeded, one more than `retries` when
    /// all failed).
    private func attempt(_ events: [LearningEvent], retries: [Duration]) async -> [any Error] {
        let statements =
            router.statements(for: events, rowsPerStatement: store.rowsPerStatement)
            + EventLog.markProcessed(events, rowsPerStatement: store.rowsPerStatement)
        var errors: [any Error] = []
        for delay in [Duration.zero] + retries {
            if delay > .zero { try? await Task.sleep(for: delay) }
            do {
                try await store.transaction(statements)
                return errors
            } catch {
                errors.append(error)
                telemetry.eventHandlerFailures.increment()
                logger.warning(
                    "Applying learning events failed",
                    metadata: ["error": "\(error)", "events": "\(events.count)", "first_event_id": "\(events.first?.eventID ?? "")"])
            }
        }
        return errors
    }

}

/// What the instructor's live view receives on `class:<id>`.
package enum ClassUpdate: Encodable, Sendable {
    case student(StudentProgress)

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .student(let student):
            try container.encode("student", forKey: .kind)
            try container.encode(student, forKey: .student)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case kind, student
    }
}

/// What a student's own page receives on `progress:<email>`.
package struct ProgressEvent: Codable, Sendable {
    var eventId: String
    var eventType: String
    var eventTime: String
    var notebook: String?
    var cellIndex: Int64?
    var hasError: Bool?
    var errorMessage: String?

    init(_ event: LearningEvent) {
        eventId = event.eventID
        eventType = event.type
        eventTime = Timestamp.format(milliseconds: event.timeMs)
        notebook = event.notebookPath
        cellIndex = event.cellIndex
        hasError = event.hasError
        errorMessage = event.errorMessage
    }
}
