import Foundation
import HTTPTypes
import Hummingbird
import PulseboardCourses
import PulseboardHTTP
import PulseboardKernel
import PulseboardMetrics
import PulseboardTracing
import Synchronization

/// `POST /api/v1/events`: the JupyterLab extension's endpoint. The extension posts from the
/// JupyterLab page (another origin, no credentials, no custom headers), so these routes answer
/// CORS preflights for any origin, and the class token travels in the URL: `?token=<class token>`
/// (query strings are never logged). Events are acknowledged after their commit.
package struct EventsController {
    struct Received: Encodable {
        var message: String
        var received: Int
        var stored: Int
        var duplicates: Int
        var ignored: Int
        var droppedFields: Int
    }

    let writer: Writer
    /// Applies the events that a commit stored for the first time.
    let processor: EventProcessor
    let classes: Classes
    let telemetry: Telemetry
    let maxBodyBytes: Int
    /// The class that takes events without a token, in `--open-ingest` mode.
    let openClassID: Int64?
    /// In-memory test events, with `--enable-test-api` only.
    let testEvents: TestEvents?
    /// Where the steps of processing a request's events are recorded (nil: not recorded).
    let log: OperationsLog?
    /// Where events without a class are kept.
    let stray: StrayEvents

    package init(
        writer: Writer, processor: EventProcessor, classes: Classes, telemetry: Telemetry, maxBodyBytes: Int, openClassID: Int64?, testEvents: TestEvents?,
        log: OperationsLog?, stray: StrayEvents
    ) {
        self.log = log
        self.stray = stray
        self.writer = writer
        self.processor = processor
        self.classes = classes
        self.telemetry = telemetry
        self.maxBodyBytes = maxBodyBytes
        self.openClassID = openClassID
        self.testEvents = testEvents
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        // The CORS header goes on errors too: without it the browser hides the status from the
        // extension, which then takes a refusal for a network error and retries forever.
        let open = router.group().add(middleware: AnyOriginMiddleware()).add(middleware: ErrorMiddleware())
        open.post("/events") { request, context in try await receive(request, context, classID: nil) }
        open.post("/classes/{id}/events") { request, context in
            try await receive(request, context, classID: try context.parameters.require("id", as: Int64.self))
        }
        for path in ["/events", "/classes/{id}/events"] {
            open.on(RouterPath(path), method: .options) { _, _ in AnyOriginMiddleware.preflight() }
        }
        if let testEvents {
            open.post("/test/events/{testId}") { request, context in
                let body = try await request.readDecompressedBody(upTo: maxBodyBytes)
                guard let json = try? JSONValue(parsing: body) else {
                    throw APIError.badRequest("The body is not JSON.", code: "malformed")
                }
                let events = if case .array(let events) = json { events } else { [json] }
                let count = testEvents.add(events, to: try context.parameters.require("testId"))
                return try JSONResponse(["message": "\(count) events stored for the test."]).response
            }
            open.get("/test/events/{testId}") { _, context in
                let id = try context.parameters.require("testId")
                let events = testEvents.events(of: id)
                return try JSONResponse(TestEvents.Listing(testId: id, count: events.count, events: events)).response
            }
            open.delete("/test/events/{testId}") { _, context in
                testEvents.clear(try context.parameters.require("testId"))
                return Response(status: .noContent)
            }
            open.get("/test/events") { _, _ in
                try JSONResponse(["testIds": testEvents.ids()]).response
            }
            for path in ["/test/events/{testId}", "/test/events"] {
                open.on(RouterPath(path), method: .options) { _, _ in AnyOriginMiddleware.preflight() }
            }
        }
        return router
    }

    /// Recorded in the task log as the task "event processing": received and stored here, then
    /// applied by the event processor, under the request's trace id.
    private func receive(_ request: Request, _ context: AppRequestContext, classID: Int64?) async throws -> Response {
        let destination = try await destination(request, expected: classID)
        let body = try await request.readDecompressedBody(upTo: maxBodyBytes)
        let parsed: EventParser.Parsed
        let target = if case .known(let id) = destination { id } else { Int64(0) }
        do {
            parsed = try EventParser.parse(body, classID: target, arrival: Date())
        } catch .notJSON {
            throw APIError.badRequest("The body is not JSON; send an array of events.", code: "malformed")
        } catch .notAnObjectOrArray {
            throw APIError.badRequest("Send an array of event objects (or one object).", code: "malformed")
        } catch .tooManyEvents(let count) {
            throw APIError.tooLarge("At most \(EventParser.maxEvents) events per request, not \(count).")
        }
        telemetry.eventsReceived.increment(by: Int64(parsed.events.count))
        telemetry.eventFieldsDropped.increment(by: Int64(parsed.droppedFields))
        let count = parsed.events.count
        if case .stray(let reason, let token, let classHint) = destination {
            try await stray.keep(parsed.events, token: token, classHint: classHint, clientAddress: context.clientAddress, now: Date())
            // Still a 401 (a client that reads answers learns its token is wrong), but nothing is lost.
            throw APIError.unauthorized(
                reason + (count == 0 ? "" : " The \(count == 1 ? "event was" : "\(count) events were") kept for an instructor to assign to a class."))
        }
        var task = TaskRecorder(log: log, traceID: context.traceID, task: EventProcessor.taskName)
        task.record(
            "received", .start,
            input: [
                "classId": .integer(target), "events": .integer(Int64(count)), "ignored": .integer(Int64(parsed.ignored)),
                "droppedFields": .integer(Int64(parsed.droppedFields)),
            ])
        let stored: Int
        do {
            stored = try await Self.store(
                parsed.events.map { event in
                    var event = event
                    event.traceID = context.traceID
                    return event
                }, writer: writer, processor: processor)
        } catch {
            task.record("stored", .failed, error: error)
            throw error
        }
        task.record("stored", .success, output: ["stored": .integer(Int64(stored)), "duplicates": .integer(Int64(count - stored))])
        return try JSONResponse(
            Received(
                message: "\(count) events received and queued for processing.", received: count, stored: stored, duplicates: count - stored,
                ignored: parsed.ignored, droppedFields: parsed.droppedFields)
        ).response
    }

    /// Stores events in the raw log (each once per class and event id) through the writer, and
    /// hands the new ones to the processor after the commit; answers how many were new.
    static func store(_ events: [LearningEvent], writer: Writer, processor: EventProcessor) async throws -> Int {
        guard !events.isEmpty else { return 0 }
        let batch = IngestBatch(rowsOnce: EventLog.rows(events, receivedAt: Date())) { newRows in
            processor.eventsCommitted(newRows.map { events[$0] })
        }
        if case .stored(_, let newRows) = try await IngestController.commit(batch, to: writer) { return newRows.count }
        return 0
    }

    /// Where a request's events go.
    private enum Destination {
        case known(classID: Int64)
        /// No class: the events are kept as stray events and the request refused with `reason`.
        case stray(reason: String, token: String?, classHint: Int64?)
    }

    /// The class a request writes to: the one its token names (which must be the class in the
    /// path, if any), or the open class in `--open-ingest` mode; else none (a missing, unknown or
    /// expired token), with the class an expired token belonged to.
    private func destination(_ request: Request, expected: Int64?) async throws -> Destination {
        if let token = request.uri.queryParameters.get("token"), !token.isEmpty {
            let hash = SecretToken.hash(token)
            guard let record = try await classes.find(tokenHash: hash) else {
                let replaced = try await classes.find(replacedTokenHash: hash)
                return .stray(
                    reason: "Unknown or replaced class token: ask your instructor for the current serverUrl.", token: token, classHint: replaced?.id)
            }
            if let expected, record.id != expected { throw APIError.forbidden("This token belongs to another class.") }
            return .known(classID: record.id)
        }
        if let openClassID, expected == nil || expected == openClassID { return .known(classID: openClassID) }
        return .stray(reason: "Add the class token to the URL: /api/v1/events?token=<class token>.", token: nil, classHint: nil)
    }
}

/// CORS for routes that any web page may call without credentials (the extension's).
package struct AnyOriginMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = "*"
        return response
    }

    static func preflight() -> Response {
        Response(
            status: .noContent,
            headers: [
                .accessControlAllowOrigin: "*",
                .accessControlAllowMethods: "POST, GET, DELETE, OPTIONS",
                .accessControlAllowHeaders: "Content-Type, Content-Encoding",
                .accessControlMaxAge: "86400",
            ]
        )
    }
}

/// Test events kept in memory for ten minutes, by test id (`--enable-test-api`).
package final class TestEvents: Sendable {
    static let lifetime: TimeInterval = 600
    static let maxPerTest = 10_000

    private let tests = Mutex<[String: (events: [JSONValue], updated: Date)]>([:])

    package init() {}

    /// Adds events and returns how many the test holds.
    func add(_ events: [JSONValue], to id: String, now: Date = Date()) -> Int {
        tests.withLock { tests in
            tests = tests.filter { now.timeIntervalSince($0.value.updated) < Self.lifetime }
            var entry = tests[id] ?? ([], now)
            entry.events = Array((entry.events + events).suffix(Self.maxPerTest))
            entry.updated = now
            tests[id] = entry
            return entry.events.count
        }
    }

    func events(of id: String, now: Date = Date()) -> [JSONValue] {
        tests.withLock { tests in
            guard let entry = tests[id], now.timeIntervalSince(entry.updated) < Self.lifetime else { return [] }
            return entry.events
        }
    }

    struct Listing: Encodable {
        var testId: String
        var count: Int
        var events: [JSONValue]
    }

    func clear(_ id: String) {
        _ = tests.withLock { $0.removeValue(forKey: id) }
    }

    func ids(now: Date = Date()) -> [String] {
        tests.withLock { tests in tests.filter { now.timeIntervalSince($0.value.updated) < Self.lifetime }.keys.sorted() }
    }
}
