import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Synchronization
import Testing

@testable import PulseboardClassroom
@testable import PulseboardCourses
@testable import PulseboardDatabase
@testable import PulseboardKernel

/// Events shaped exactly like the JupyterLab cell-monitor extension's.
enum ExtensionEvent {
    static func json(
        _ type: String, email: String = "student001@example.com", id: String = UUID().uuidString, time: Date = Date(),
        name: String = "Student One", team: String = "team-a", notebook: String = "week1/intro.ipynb", cell: Int? = nil,
        hasError: Bool? = nil, error: String? = nil
    ) -> String {
        var fields = [
            #""eventId":"\#(id)""#, #""eventType":"\#(type)""#, #""eventTime":"\#(Timestamp.format(time))""#,
            #""emailAddress":"\#(email)""#, #""userName":"\#(name)""#, #""teamName":"\#(team)""#, #""sessionId":"session-\#(email)""#,
            #""notebookPath":"\#(notebook)""#,
        ]
        if let cell {
            fields += [
                #""cellId":"cell-\#(cell)""#, #""cellIndex":\#(cell)"#, #""cellType":"code""#, #""code":"print(\#(cell))""#,
                #""executionCount":\#(cell + 1)"#, #""executionDurationMs":12.5"#,
            ]
        }
        if let hasError { fields.append(#""hasError":\#(hasError)"#) }
        if let error { fields.append(#""errorMessage":"\#(error)""#) }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

struct CreatedClass: Decodable {
    var id: Int64
    var code: String
    var ingestToken: String?
    var serverUrl: String?
}

struct ProgressAnswer: Decodable {
    struct Student: Decodable {
        struct Help: Decodable {
            var id: Int64
        }

        var email: String
        var name: String?
        var team: String?
        var status: String
        var notebook: String?
        var cellIndex: Int?
        var cellsExecuted: Int
        var recentErrors: Int
        var helpRequest: Help?
        var helped: Helped?
    }

    struct Helped: Decodable {
        var by: String?
        var at: String
    }

    struct Team: Decodable {
        var team: String
        var students: [Student]
    }

    var students: [Student]?
    var teams: [Team]?
}

extension TestClientProtocol {
    func createClass(_ code: String, token: String) async throws -> CreatedClass {
        let response = try await request(.post, "/api/v1/classes", token: token, json: #"{"name":"Class \#(code)","code":"\#(code)"}"#)
        try #require(response.status == .created, "class not created: \(response.text)")
        return try response.decode(CreatedClass.self)
    }

    func sendEvents(_ events: [String], classToken: String?, path: String = "/api/v1/events") async throws -> TestResponse {
        let uri = classToken.map { "\(path)?token=\($0)" } ?? path
        return try await request(.post, uri, json: "[" + events.joined(separator: ",") + "]", headers: [.origin: "http://localhost:8888"])
    }

    func progress(_ classID: Int64, token: String, query: String = "") async throws -> ProgressAnswer {
        let response = try await request(.get, "/api/v1/classes/\(classID)/progress\(query)", token: token)
        try #require(response.status == .ok, "progress: \(response.text)")
        return try response.decode(ProgressAnswer.self)
    }

    /// Waits until the event pipeline has applied what was acknowledged.
    func student(_ email: String, in classID: Int64, token: String, where condition: @escaping @Sendable (ProgressAnswer.Student) -> Bool)
        async throws -> ProgressAnswer.Student
    {
        let found = Mutex<ProgressAnswer.Student?>(nil)
        try await waitUntil {
            let student = try await progress(classID, token: token).students?.first { $0.email == email }
            found.withLock { $0 = student }
            return student.map(condition) ?? false
        }
        return try #require(found.withLock { $0 })
    }
}

@Suite("Learning events: ingest, pipeline, aggregates", .throwawayPostgres, .timeLimit(.minutes(2)))
struct LearningEventTests {
    @Test(arguments: TestEngine.all) func extensionEventsAreAcknowledgedStoredOnceAndApplied(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: try await client.login().accessToken)
            let course = try await client.createClass("py101", token: instructor)
            let classToken = try #require(course.ingestToken)
            #expect(course.serverUrl == "http://localhost/api/v1/events?token=\(classToken)")
            let events = [
                ExtensionEvent.json("notebook_opened"),
                ExtensionEvent.json("cell_executed", cell: 0, hasError: false),
                ExtensionEvent.json("cell_executed", cell: 1, hasError: false),
                ExtensionEvent.json("cell_executed", cell: 2, hasError: true, error: "NameError: name 'x' is not defined"),
                ExtensionEvent.json("help", cell: 2),
            ]
            let first = try await client.sendEvents(events, classToken: classToken)
            #expect(first.status == .ok)
            #expect(first.text.contains(#""message":"5 events received and queued for processing.""#))
            #expect(first.text.contains(#""stored":5"#))
            // The extension may resend: acknowledged again, stored once.
            let again = try await client.sendEvents(events, classToken: classToken)
            #expect(again.status == .ok)
            #expect(again.text.contains(#""duplicates":5"#))
            // The same event twice in one request, and one without an email: stored once each.
            let twice = ExtensionEvent.json("notebook_saved", id: "same-id")
            let anonymous = #"{"eventId":"no-email","eventType":"session_start"}"#
            let mixed = try await client.sendEvents([twice, twice, anonymous], classToken: classToken)
            #expect(mixed.text.contains(#""stored":2"#) && mixed.text.contains(#""duplicates":1"#))

            let student = try await client.student("student001@example.com", in: course.id, token: instructor) { $0.helpRequest != nil }
            #expect(student.status == "needs_help")
            #expect(student.cellsExecuted == 3)
            #expect(student.recentErrors == 1)
            #expect(student.name == "Student One")
            #expect(student.team == "team-a")
            #expect(student.notebook == "week1/intro.ipynb")
            #expect(student.cellIndex == 2)
            let stored = try await parts.store.select(SQLStatement("SELECT COUNT(*) FROM events WHERE class_id = ?", .integer(course.id)))
            #expect(stored.first?.first?.int == 7)
            let withoutEmail = try await parts.store.select(SQLStatement("SELECT email FROM events WHERE event_id = ?", .text("no-email")))
            #expect(withoutEmail.first?.first == SQLValue.null)
            let executions = try await parts.store.select(SQLStatement("SELECT COUNT(*) FROM cell_executions WHERE class_id = ?", .integer(course.id)))
            #expect(executions.first?.first?.int == 3)
        }
    }

    @Test(arguments: TestEngine.all) func badBodiesAreRefusedClearlyAndWrongFieldsDropped(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, configure: { $0.maxBodyBytes = 64 * 1024 }) { client, parts in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("bad-input", token: admin)
            let other = try await client.createClass("other", token: admin)
            let token = try #require(course.ingestToken)

            let notJSON = try await client.request(.post, "/api/v1/events?token=\(token)", json: "{not json")
            #expect(notJSON.status == .badRequest)
            #expect(notJSON.error?.code == "malformed")
            #expect(try await client.request(.post, "/api/v1/events?token=\(token)", json: "42").status == .badRequest)
            let many = "[" + Array(repeating: "{}", count: 1_001).joined(separator: ",") + "]"
            #expect(try await client.request(.post, "/api/v1/events?token=\(token)", json: many).status == .contentTooLarge)
            let huge = "[" + ExtensionEvent.json("cell_executed", error: String(repeating: "x", count: 70_000)) + "]"
            #expect(try await client.request(.post, "/api/v1/events?token=\(token)", json: huge).status == .contentTooLarge)

            let event = [ExtensionEvent.json("cell_executed", cell: 1)]
            let noToken = try await client.sendEvents(event, classToken: nil)
            #expect(noToken.status == .unauthorized)
            #expect(noToken.headers[.accessControlAllowOrigin] == "*", "the browser must see the status")
            #expect(try await client.sendEvents(event, classToken: "pbc_not-a-token").status == .unauthorized)
            let wrongClass = try await client.sendEvents(event, classToken: token, path: "/api/v1/classes/\(other.id)/events")
            #expect(wrongClass.status == .forbidden)
            #expect(try await client.sendEvents(event, classToken: token, path: "/api/v1/classes/\(course.id)/events").status == .ok)

            // A wrong type inside an event drops that field and keeps the event; unknown types and
            // fields are kept; a missing id and time are filled in.
            let lenient = try await client.request(
                .post, "/api/v1/events?token=\(token)",
                json:
                    #"[{"eventType":"cell_executed","emailAddress":"Lenient@Example.com","cellIndex":"x","hasError":"no","surprise":1},{"eventType":"kernel_restarted","emailAddress":"lenient@example.com"},7]"#
            )
            #expect(lenient.status == .ok)
            #expect(lenient.text.contains(#""droppedFields":2"#))
            #expect(lenient.text.contains(#""ignored":1"#))
            #expect(lenient.text.contains(#""stored":2"#))
            let rows = try await parts.store.select(
                SQLStatement("SELECT event_type, payload FROM events WHERE email = ? ORDER BY id", .text("lenient@example.com")))
            #expect(rows.map { $0[0].string } == ["cell_executed", "kernel_restarted"])
            let payload = try #require(rows.first?[1].string)
            #expect(payload.contains(#""surprise":1"#) && payload.contains("eventId") && payload.contains("eventTime"))
            #expect(!payload.contains("cellIndex"))
            // A complete event is kept as its very text (spacing, order and escapes as sent).
            let exact = #"{ "emailAddress":"exact@example.com", "eventId" : "x-1","eventType":"help","eventTime":"2026-12-07T10:00:00Z","note":"café" }"#
            #expect(try await client.request(.post, "/api/v1/events?token=\(token)", json: "[" + exact + "]").status == .ok)
            let kept = try await parts.store.select(SQLStatement("SELECT payload FROM events WHERE email = ?", .text("exact@example.com")))
            #expect(kept.first?.first?.string == exact)
            let metrics = try await client.request(.get, "/metrics", token: admin)
            #expect(metrics.text.contains("pulseboard_event_fields_dropped_total 2"))
        }
    }

    @Test(arguments: TestEngine.all) func aPreflightFromTheJupyterLabOriginIsAnswered(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let preflight = try await client.request(
                .options, "/api/v1/events?token=x",
                headers: [.origin: "http://localhost:8888", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "content-type"]
            )
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "*")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.lowercased().contains("content-type") == true)
            #expect(preflight.headers[.accessControlAllowCredentials] == nil)
            // Other routes do not invite other origins.
            let login = try await client.request(.post, "/auth/login", json: "{}", headers: [.origin: "http://localhost:8888"])
            #expect(login.headers[.accessControlAllowOrigin] == nil)
        }
        // Unless the operator lists them: then with credentials.
        try await TestApp.run(engine: engine, configure: { $0.corsOrigins = ["https://lms.example.edu"] }) { client, _ in
            let listed = try await client.request(
                .options, "/api/v1/classes", headers: [.origin: "https://lms.example.edu", .accessControlRequestMethod: "POST"])
            #expect(listed.status == .noContent)
            #expect(listed.headers[.accessControlAllowOrigin] == "https://lms.example.edu")
            #expect(listed.headers[.accessControlAllowCredentials] == "true")
            let me = try await client.request(.get, "/auth/me", headers: [.origin: "https://lms.example.edu"])
            #expect(me.headers[.accessControlAllowOrigin] == "https://lms.example.edu")
            let other = try await client.request(.get, "/auth/me", headers: [.origin: "https://evil.example"])
            #expect(other.headers[.accessControlAllowOrigin] == nil)
            let ingest = try await client.sendEvents([ExtensionEvent.json("help")], classToken: nil)
            #expect(ingest.headers[.accessControlAllowOrigin] == "*")
        }
    }

    @Test(arguments: TestEngine.all) func openIngestTakesEventsWithoutAToken(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, configure: { $0.openIngest = true }) { client, _ in
            let admin = try await client.login().accessToken
            #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", cell: 0)], classToken: nil).status == .ok)
            let classes = try await client.request(.get, "/api/v1/classes", token: admin)
            struct Classes: Decodable { var classes: [CreatedClass] }
            let open = try #require(try classes.decode(Classes.self).classes.first { $0.code == "open" })
            _ = try await client.student("student001@example.com", in: open.id, token: admin) { $0.cellsExecuted == 1 }
        }
        try await TestApp.run(engine: engine) { client, _ in
            let refused = try await client.sendEvents([ExtensionEvent.json("cell_executed", cell: 0)], classToken: nil)
            #expect(refused.status == .unauthorized)
        }
    }

    @Test(arguments: TestEngine.all) func aggregatesOnAKnownSequence(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: try await client.login().accessToken)
            let course = try await client.createClass("known", token: instructor)
            let token = try #require(course.ingestToken)
            let now = Date()
            let old = now.addingTimeInterval(-3_600)
            let events = [
                // ann: works without errors (active); bob: last run failed (erroring); cid: an hour ago (idle);
                // dee: asked for help and released it, then asked again.
                ExtensionEvent.json("cell_executed", email: "ann@example.com", team: "red", cell: 0, hasError: false),
                ExtensionEvent.json("cell_executed", email: "ann@example.com", team: "red", cell: 1, hasError: false),
                ExtensionEvent.json("cell_executed", email: "bob@example.com", time: now.addingTimeInterval(-2), team: "red", cell: 0, hasError: false),
                ExtensionEvent.json(
                    "cell_executed", email: "bob@example.com", time: now.addingTimeInterval(-1), team: "red", cell: 1, hasError: true,
                    error: "ZeroDivisionError: division by zero"),
                ExtensionEvent.json(
                    "cell_executed", email: "cid@example.com", time: old, team: "blue", cell: 1, hasError: true, error: "ZeroDivisionError: division by zero"),
                ExtensionEvent.json(
                    "cell_executed", email: "dee@example.com", time: now.addingTimeInterval(-3), team: "blue", cell: 1, hasError: true, error: "KeyError: 'a'"),
                ExtensionEvent.json("help", email: "dee@example.com", time: now.addingTimeInterval(-3), team: "blue", cell: 1),
                ExtensionEvent.json("help_stop", email: "dee@example.com", time: now.addingTimeInterval(-2), team: "blue"),
                ExtensionEvent.json("help", email: "dee@example.com", time: now.addingTimeInterval(-1), team: "blue", cell: 1),
            ]
            #expect(try await client.sendEvents(events, classToken: token).status == .ok)
            _ = try await client.student("dee@example.com", in: course.id, token: instructor) { $0.helpRequest != nil }
            let students = try #require(try await client.progress(course.id, token: instructor).students)
            #expect(students.map(\.email) == ["ann@example.com", "bob@example.com", "cid@example.com", "dee@example.com"])
            #expect(students.map(\.status) == ["active", "erroring", "idle", "needs_help"])
            #expect(students.map(\.cellsExecuted) == [2, 2, 1, 1])
            // cid's error is an hour old: not recent.
            #expect(students.map(\.recentErrors) == [0, 1, 0, 1])

            let teams = try #require(try await client.progress(course.id, token: instructor, query: "?groupBy=team").teams)
            #expect(teams.map(\.team) == ["blue", "red"])
            #expect(teams.map { $0.students.map(\.email) } == [["cid@example.com", "dee@example.com"], ["ann@example.com", "bob@example.com"]])
            #expect(try await client.request(.get, "/api/v1/classes/\(course.id)/progress?groupBy=x", token: instructor).status == .badRequest)

            // Cell reach and error hot spots of the notebook.
            let notebooks = try await client.request(.get, "/api/v1/classes/\(course.id)/notebooks", token: instructor)
            struct Notebooks: Decodable {
                struct Notebook: Decodable {
                    struct Cell: Decodable {
                        var cellIndex: Int?
                        var students: Int
                        var errors: Int
                    }

                    struct HotSpot: Decodable {
                        struct Message: Decodable {
                            var message: String
                            var count: Int
                        }

                        var cellIndex: Int?
                        var errors: Int
                        var topErrors: [Message]
                    }

                    var notebook: String
                    var cells: [Cell]
                    var hotSpots: [HotSpot]
                }

                var notebooks: [Notebook]
            }
            let notebook = try #require(try notebooks.decode(Notebooks.self).notebooks.first)
            #expect(notebook.cells.map(\.cellIndex) == [0, 1])
            #expect(notebook.cells.map(\.students) == [2, 4])
            #expect(notebook.cells.map(\.errors) == [0, 3])
            #expect(notebook.hotSpots.first?.cellIndex == 1)
            #expect(notebook.hotSpots.first?.topErrors.first?.message == "ZeroDivisionError: division by zero")
            #expect(notebook.hotSpots.first?.topErrors.first?.count == 2)

            // The instructor resolves dee's help request.
            let dee = try #require(students.last?.helpRequest)
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/help/\(dee.id)/resolve", token: instructor).status == .noContent)
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/help/\(dee.id)/resolve", token: instructor).status == .notFound)
            #expect(try await client.progress(course.id, token: instructor).students?.last?.status == "erroring")

            // bob's timeline, paged, and the class's events as CSV.
            let timeline = try await client.request(
                .get, "/api/v1/classes/\(course.id)/students/bob%40example.com/timeline?limit=1&offset=1", token: instructor)
            #expect(timeline.status == .ok)
            #expect(timeline.text.contains("ZeroDivisionError") && !timeline.text.contains(#""cellIndex":0"#))
            #expect(
                try await client.request(.get, "/api/v1/classes/\(course.id)/students/bob@example.com/timeline?limit=0", token: instructor).status
                    == .badRequest)
            let csv = try await client.request(
                .get, "/api/v1/classes/\(course.id)/events.csv?from=\(Timestamp.format(old.addingTimeInterval(-1)))", token: instructor)
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(csv.text.hasPrefix("\u{FEFF}eventId,"))
            let lines = csv.text.dropFirst().split(separator: "\r\n")
            #expect(lines.count == 1 + events.count)
            #expect(lines.first?.hasPrefix("eventId,eventType,eventTime,emailAddress") == true)
            #expect(csv.text.contains(#""KeyError: 'a'""#) == false && csv.text.contains("KeyError: 'a'"))
        }
    }

    @Test(arguments: TestEngine.all) func classRoutesCheckTheRole(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let stranger = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            let course = try await client.createClass("roles", token: owner)
            #expect(try await client.request(.post, "/api/v1/classes", token: owner, json: #"{"name":"Again","code":"roles"}"#).status == .conflict)
            #expect(try await client.request(.post, "/api/v1/classes", token: owner, json: #"{"name":"","code":"x"}"#).status == .unprocessableContent)
            #expect(try await client.request(.post, "/api/v1/classes", token: owner, json: #"{"name":"x","code":"a b"}"#).status == .unprocessableContent)
            #expect(try await client.request(.post, "/api/v1/classes", token: owner, json: #"{"name":1}"#).status == .badRequest)
            #expect(try await client.request(.post, "/api/v1/classes", token: student, json: #"{"name":"x","code":"s"}"#).status == .forbidden)
            for path in ["", "/progress", "/notebooks", "/students/a@example.com/timeline", "/events.csv", "/token"] {
                let uri = "/api/v1/classes/\(course.id)\(path)"
                #expect(try await client.request(.get, uri, token: owner).status == .ok, "\(uri)")
                #expect(try await client.request(.get, uri, token: admin).status == .ok, "\(uri)")
                #expect(try await client.request(.get, uri, token: stranger).status == .forbidden, "\(uri)")
                #expect(try await client.request(.get, uri, token: student).status == .forbidden, "\(uri)")
                #expect(try await client.request(.get, uri).status == .unauthorized, "\(uri)")
                #expect(try await client.request(.get, "/api/v1/classes/999999\(path)", token: owner).status == .notFound, "\(uri)")
            }
            let mine = try await client.request(.get, "/api/v1/classes", token: stranger)
            #expect(mine.text.contains(#""total":0"#))
            // A replaced token keeps working for its grace period (24 h by default), and the class says until when.
            let old = try #require(course.ingestToken)
            let replaced = try await client.request(.post, "/api/v1/classes/\(course.id)/token", token: owner)
            let rotated = try #require(try replaced.decode(CreatedClass.self).ingestToken)
            #expect(replaced.text.contains(#""previousTokenUntil":""#))
            #expect(try await client.sendEvents([ExtensionEvent.json("help")], classToken: old).status == .ok)
            #expect(try await client.sendEvents([ExtensionEvent.json("help")], classToken: rotated).status == .ok)
            #expect(try await client.request(.get, "/api/v1/classes/\(course.id)/token", token: owner).text.contains("previousTokenUntil"))
            // With no grace (a token that leaked) both the old ones stop at once.
            let leakedReplacement = try await client.request(.post, "/api/v1/classes/\(course.id)/token?graceHours=0", token: owner)
            #expect(!leakedReplacement.text.contains("previousTokenUntil"))
            for stopped in [old, rotated] {
                #expect(try await client.sendEvents([ExtensionEvent.json("help")], classToken: stopped).status == .unauthorized)
            }
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/token?graceHours=999", token: owner).status == .badRequest)
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/token", token: stranger).status == .forbidden)
        }
    }

    /// A failing handler is retried and logged; the raw event stays stored and unprocessed, and
    /// the sweep applies it once handlers work again.
    @Test(arguments: TestEngine.all) func handlerFailuresNeverLoseTheRawEvent(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("retry", token: admin)
            var broken = EventRouter(fallback: { _ in [SQLStatement("INSERT INTO no_such_table VALUES (1)")] })
            broken.register("help") { _ in [SQLStatement("INSERT INTO no_such_table VALUES (1)")] }
            let progress = ClassProgress(store: parts.store)
            let failing = EventProcessor(
                store: parts.store, router: broken, telemetry: parts.telemetry, logger: TestApp.logger,
                channel: ClassChannel(hub: parts.hub, progress: progress, relay: nil, telemetry: parts.telemetry, logger: TestApp.logger),
                retryDelays: [.milliseconds(1), .milliseconds(1)])
            let event = try #require(
                try EventParser.parse(Data(ExtensionEvent.json("help", email: "retry@example.com").utf8), classID: course.id, arrival: Date()).events.first)
            // Stored by the writer's statement, as ingest would.
            _ = try await parts.store.transaction(EventLog.rows([event], receivedAt: Date()).statementsAsNew)
            #expect(await failing.apply([event]) == false)
            let unprocessed = try await parts.store.select(EventLog.unprocessed(limit: 10), as: EventLog.Stored.self)
            #expect(unprocessed.map(\.eventID).contains(event.eventID))
            let metrics = try await client.request(.get, "/metrics", token: admin)
            #expect(metrics.text.contains("pulseboard_event_handler_failures_total 4"))

            let working = EventProcessor(
                store: parts.store, telemetry: parts.telemetry, logger: TestApp.logger,
                channel: ClassChannel(hub: parts.hub, progress: progress, relay: nil, telemetry: parts.telemetry, logger: TestApp.logger))
            await working.sweep(olderThan: .zero)
            #expect(try await parts.store.select(EventLog.unprocessed(limit: 10)).isEmpty)
            #expect(try await progress.students(classID: course.id).first?.status == .needsHelp)

            // A class deleted before its events were applied: its events went with it, and the
            // sweep forgets that they were waiting.
            let gone = try await client.createClass("gone", token: admin)
            var orphan = event
            orphan.classID = gone.id
            _ = try await parts.store.transaction(EventLog.rows([orphan], receivedAt: Date()).statementsAsNew)
            #expect(try await client.request(.delete, "/api/v1/classes/\(gone.id)", token: admin).status == .noContent)
            #expect(try await parts.store.selectCount(SQLStatement("SELECT COUNT(*) FROM events_unapplied")) == 1)
            await working.sweep(olderThan: .zero)
            #expect(try await parts.store.selectCount(SQLStatement("SELECT COUNT(*) FROM events_unapplied")) == 0)
        }
    }

    /// A stored event whose payload is not a JSON object (a hand-edited row, say) is an error the
    /// log names: the timeline and the export refuse to leave it out, and the sweep gives up on it
    /// so that the events behind it are still applied.
    @Test(arguments: TestEngine.all) func anUnreadableStoredEventIsReportedNeverSkipped(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("unreadable", token: admin)
            let now = Date()
            let good = try #require(
                try EventParser.parse(Data(ExtensionEvent.json("help", email: "after@example.com").utf8), classID: course.id, arrival: now).events.first)
            var bad = good
            (bad.eventID, bad.email, bad.payload) = ("bad-1", "after@example.com", "not json")
            _ = try await parts.store.transaction(
                EventLog.rows([bad], receivedAt: now).statementsAsNew + EventLog.rows([good], receivedAt: now).statementsAsNew)
            let stored = try await parts.store.select(EventLog.unprocessed(limit: 10), as: EventLog.Stored.self)
            #expect(stored.map(\.eventID) == ["bad-1", good.eventID])
            #expect(throws: EventLog.UnreadableEvent.self) { try stored[0].event() }

            let timeline = try await client.request(.get, "/api/v1/classes/\(course.id)/students/after@example.com/timeline", token: admin)
            #expect(timeline.status == .internalServerError)
            #expect(try await client.request(.get, "/api/v1/classes/\(course.id)/events.csv", token: admin).status == .internalServerError)

            let progress = ClassProgress(store: parts.store)
            let processor = EventProcessor(
                store: parts.store, telemetry: parts.telemetry, logger: TestApp.logger,
                channel: ClassChannel(hub: parts.hub, progress: progress, relay: nil, telemetry: parts.telemetry, logger: TestApp.logger))
            await processor.sweep(olderThan: .zero)
            #expect(try await parts.store.select(EventLog.unprocessed(limit: 10)).isEmpty)
            #expect(try await progress.students(classID: course.id).first?.status == .needsHelp)
        }
    }

    /// The processor writes who the students are once per batch, merged; the picture must be the
    /// one that applying the same events one at a time leaves.
    @Test(arguments: TestEngine.all) func aBatchLeavesThePictureThatEventsOneByOneLeave(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let progress = ClassProgress(store: parts.store)
            let processor = EventProcessor(
                store: parts.store, telemetry: parts.telemetry, logger: TestApp.logger,
                channel: ClassChannel(hub: parts.hub, progress: progress, relay: nil, telemetry: parts.telemetry, logger: TestApp.logger))
            let start = Date(timeIntervalSince1970: 1_790_000_000)
            func script(_ tag: String) -> [String] {
                let (ann, bob) = ("ann-\(tag)@example.com", "bob-\(tag)@example.com")
                return [
                    ExtensionEvent.json("notebook_opened", email: ann, time: start, name: "Ann", notebook: "a.ipynb"),
                    ExtensionEvent.json("cell_executed", email: bob, time: start.addingTimeInterval(5), name: "Bob", cell: 0, hasError: true),
                    ExtensionEvent.json("cell_executed", email: ann, time: start.addingTimeInterval(9), name: "Ann B.", cell: 1, hasError: false),
                    // Late and out of order: counts, but does not move Ann back.
                    ExtensionEvent.json("cell_executed", email: ann, time: start.addingTimeInterval(3), name: "Ann C.", cell: 0, hasError: true),
                    ExtensionEvent.json("help", email: bob, time: start.addingTimeInterval(12), name: "Bob", team: "team-b", notebook: "b.ipynb", cell: 4),
                    ExtensionEvent.json("help_stop", email: bob, time: start.addingTimeInterval(20), name: "Bob"),
                    ExtensionEvent.json("help", email: bob, time: start.addingTimeInterval(25), name: "Bob"),
                    ExtensionEvent.json("session_end", email: ann, time: start.addingTimeInterval(30), name: "Ann D."),
                    // At the same time as where Ann is: moves her; no cell named: keeps her cell.
                    ExtensionEvent.json("notebook_saved", email: ann, time: start.addingTimeInterval(30), name: "Ann D.", notebook: "c.ipynb"),
                    ExtensionEvent.json("cell_executed", email: bob, time: start.addingTimeInterval(26), name: "Bob", cell: 2, hasError: true),
                    // Older than an earlier event of the batch: counts, moves nothing, leaves the last run's mark.
                    ExtensionEvent.json("cell_executed", email: bob, time: start.addingTimeInterval(22), name: "Bob", cell: 5, hasError: false),
                    ExtensionEvent.json("notebook_closed", email: bob, time: start.addingTimeInterval(40), name: "Bob", notebook: "b.ipynb"),
                    // Repeats of Bob's running help, the last one late; Ann's help repeated after more than the quiet period.
                    ExtensionEvent.json("help", email: bob, time: start.addingTimeInterval(35), name: "Bob"),
                    ExtensionEvent.json("help", email: ann, time: start.addingTimeInterval(100), name: "Ann D.", cell: 7),
                    ExtensionEvent.json("help", email: bob, time: start.addingTimeInterval(50), name: "Bob"),
                    ExtensionEvent.json("help", email: bob, time: start.addingTimeInterval(31), name: "Bob"),
                    ExtensionEvent.json("help", email: ann, time: start.addingTimeInterval(200), name: "Ann D."),
                    ExtensionEvent.json("help_stop", email: bob, time: start.addingTimeInterval(55), name: "Bob"),
                    ExtensionEvent.json("help", email: bob, time: start.addingTimeInterval(56), name: "Bob"),
                    ExtensionEvent.json("help", email: ann, time: start.addingTimeInterval(230), name: "Ann D."),
                ]
            }
            func events(_ tag: String, classID: Int64) throws -> [LearningEvent] {
                try EventParser.parse(Data(("[" + script(tag).joined(separator: ",") + "]").utf8), classID: classID, arrival: start).events
            }
            let batched = try await client.createClass("batched", token: admin)
            let single = try await client.createClass("single", token: admin)
            let halves = try await client.createClass("halves", token: admin)
            #expect(await processor.apply(try events("x", classID: batched.id)))
            for event in try events("y", classID: single.id) { #expect(await processor.apply([event])) }
            // A second batch starts from what the first one stored (Bob's late runs come after his help).
            let inHalves = try events("z", classID: halves.id)
            #expect(await processor.apply(Array(inHalves.prefix(6))))
            #expect(await processor.apply(Array(inHalves.dropFirst(6))))

            /// Every row the picture keeps for a class, with the tag taken out of the emails.
            func picture(_ classID: Int64, _ tag: String) async throws -> [String] {
                let queries = [
                    """
                    SELECT s.email, s.name, s.team, s.first_seen, s.last_seen, cs.joined_at, cs.last_event_at, cs.last_event_type, cs.notebook_path,
                        cs.cell_index, cs.cell_id, cs.cells_executed, cs.last_execution_failed
                    FROM class_students cs JOIN students s ON s.id = cs.student_id WHERE cs.class_id = ? ORDER BY s.email
                    """,
                    "SELECT s.email, ss.started_at, ss.last_seen, ss.ended_at FROM student_sessions ss JOIN students s ON s.id = ss.student_id WHERE ss.class_id = ? ORDER BY s.email",
                    "SELECT path, first_seen FROM notebooks WHERE class_id = ? ORDER BY path",
                    """
                    SELECT s.email, h.opened_at, h.closed_at, h.closed_by, h.last_help_at, h.released_at, h.cell_index
                    FROM help_requests h JOIN students s ON s.id = h.student_id WHERE h.class_id = ? ORDER BY h.opened_at
                    """,
                    "SELECT COUNT(*) FROM events_unapplied WHERE class_id = ?",
                    """
                    SELECT s.email, c.notebook_path, c.cell_id, c.cell_index, c.execution_count, c.duration_ms, c.has_error, c.error_message, c.code,
                        c.executed_at, c.cell_type FROM cell_executions c JOIN students s ON s.id = c.student_id WHERE c.class_id = ?
                        ORDER BY c.executed_at, s.email
                    """,
                    "SELECT s.email, a.notebook_path, a.action, a.at FROM notebook_accesses a JOIN students s ON s.id = a.student_id WHERE a.class_id = ? ORDER BY a.at, s.email",
                ]
                var rows: [String] = []
                for query in queries {
                    rows += try await parts.store.select(SQLStatement(query, .integer(classID))).map { "\($0)".replacingOccurrences(of: "-\(tag)@", with: "@") }
                }
                return rows
            }
            let one = try await picture(batched.id, "x")
            #expect(one == (try await picture(single.id, "y")))
            #expect(try await picture(halves.id, "z") == (try await picture(single.id, "y")))
            #expect(one.contains { $0.contains("Ann D.") } && one.count > 6)
        }
    }

    /// What the body reader refuses, and how: JSON of another shape is named as such, anything
    /// that is not JSON (trailing text included) is malformed, and non-objects in an array are
    /// only counted.
    @Test func theEventBodyIsAnArrayOfObjectsOrOneObject() throws {
        func failure(_ body: String) -> EventParser.Failure? {
            do {
                _ = try EventParser.parse(Data(body.utf8), classID: 1, arrival: Date())
                return nil
            } catch {
                return error
            }
        }
        #expect(failure("42") == .notAnObjectOrArray)
        #expect(failure(#""text""#) == .notAnObjectOrArray)
        #expect(failure("42 x") == .notJSON)
        #expect(failure("{} x") == .notJSON)
        #expect(failure("[{},") == .notJSON)
        #expect(failure(" {} ") == nil)
        let parsed = try EventParser.parse(Data(#"[1, {"eventType":"help"}, "x"]"#.utf8), classID: 1, arrival: Date())
        #expect(parsed.events.map(\.type) == ["help"] && parsed.ignored == 2)
    }

    @Test(arguments: TestEngine.all) func theTestAPIExistsOnlyWhenEnabled(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let absent = try await client.request(.post, "/api/v1/test/events/t1", json: "[]")
            #expect(absent.status == .notFound)
        }
        try await TestApp.run(engine: engine, configure: { $0.enableTestAPI = true }) { client, _ in
            #expect(try await client.request(.post, "/api/v1/test/events/t1", json: "[" + ExtensionEvent.json("help") + "]").status == .ok)
            #expect(try await client.request(.post, "/api/v1/test/events/t1", json: "{not json").status == .badRequest)
            let stored = try await client.request(.get, "/api/v1/test/events/t1")
            #expect(stored.text.contains(#""count":1"#) && stored.text.contains(#""eventType":"help""#))
            #expect(try await client.request(.get, "/api/v1/test/events").text.contains(#""t1""#))
            #expect(try await client.request(.delete, "/api/v1/test/events/t1").status == .noContent)
            #expect(try await client.request(.get, "/api/v1/test/events/t1").text.contains(#""count":0"#))
        }
    }
}

@Suite("Learning events: live channels", .throwawayPostgres, .timeLimit(.minutes(2)))
struct LearningLiveTests {
    @Test(arguments: TestEngine.all) func theInstructorFollowsTheClassAndStudentsOnlyThemselves(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let stranger = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin, email: "student001@example.com")
            let course = try await client.createClass("live", token: instructor)
            let token = try #require(course.ingestToken)
            // Before any event, the student belongs to no class of the instructor's.
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(stranger, on: outbound)
                #expect(try await reader.subscribe("class:\(course.id)", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("progress:student001@example.com", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("progress:\(course.id):student001@example.com", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("class:abc", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("notifications:1", on: outbound).code == "forbidden")
                try await outbound.close(.normalClosure, reason: nil)
            }
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(instructor, on: outbound)
                #expect(try await reader.subscribe("class:\(course.id)", on: outbound).type == "subscribed")
                #expect(try await client.sendEvents([ExtensionEvent.json("help", cell: 3)], classToken: token).status == .ok)
                let update = try await reader.next()
                #expect(update.channel == "class:\(course.id)")
                let data = try #require(update.fields["data"] as? [String: Any])
                let card = try #require(data["student"] as? [String: Any])
                #expect(data["kind"] as? String == "student")
                #expect(card["email"] as? String == "student001@example.com")
                #expect(card["status"] as? String == "needs_help")
                // The student's progress in this class is visible too, but not across classes.
                #expect(try await reader.subscribe("progress:\(course.id):student001@example.com", on: outbound).type == "subscribed")
                #expect(try await reader.subscribe("progress:student001@example.com", on: outbound).code == "forbidden")
                try await outbound.close(.normalClosure, reason: nil)
            }
            // The stranger enrols the same student in their own class: they see the student's
            // events there, and none of the events in the first class.
            let elsewhere = try await client.createClass("elsewhere", token: stranger)
            let enrolled = try await client.request(
                .post, "/api/v1/classes/\(elsewhere.id)/students", token: stranger, json: #"{"email":"student001@example.com"}"#)
            #expect(enrolled.status == .created)
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(stranger, on: outbound)
                #expect(try await reader.subscribe("progress:student001@example.com", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("progress:\(course.id):student001@example.com", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("progress:\(elsewhere.id):student001@example.com", on: outbound).type == "subscribed")
                #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", cell: 7, hasError: false)], classToken: token).status == .ok)
                let otherToken = try #require(elsewhere.ingestToken)
                #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", cell: 8, hasError: false)], classToken: otherToken).status == .ok)
                // The first message is the event of their own class: the other class's never came.
                let seen = try await reader.next()
                #expect(seen.channel == "progress:\(elsewhere.id):student001@example.com")
                #expect((seen.fields["data"] as? [String: Any])?["cellIndex"] as? Int == 8)
                try await outbound.close(.normalClosure, reason: nil)
            }
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(student, on: outbound)
                #expect(try await reader.subscribe("class:\(course.id)", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("progress:someone-else@example.com", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("progress:student001@example.com", on: outbound).type == "subscribed")
                #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", cell: 4, hasError: false)], classToken: token).status == .ok)
                let progress = try await reader.next()
                #expect(progress.channel == "progress:student001@example.com")
                #expect((progress.fields["data"] as? [String: Any])?["cellIndex"] as? Int == 4)
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test(arguments: TestEngine.all) func studentsSeeTheirOwnProgressAndAdminsBroadcast(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin, email: "student001@example.com")
            let course = try await client.createClass("mine", token: instructor)
            #expect(try await client.request(.get, "/api/v1/me/progress", token: student).text == #"{"classes":[]}"#)
            #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", cell: 5)], classToken: course.ingestToken).status == .ok)
            try await waitUntil { try await client.request(.get, "/api/v1/me/progress", token: student).text.contains(#""cellsExecuted":1"#) }
            let mine = try await client.request(.get, "/api/v1/me/progress", token: student)
            #expect(mine.text.contains(#""className":"Class mine""#) && mine.text.contains(#""cellIndex":5"#))
            #expect(try await client.request(.get, "/api/v1/me/progress").status == .unauthorized)

            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(student, on: outbound)
                #expect(try await reader.subscribe("broadcast", on: outbound).type == "subscribed")
                #expect(try await client.request(.post, "/api/v1/broadcast", token: instructor, json: #"{"message":"hi"}"#).status == .forbidden)
                #expect(try await client.request(.post, "/api/v1/broadcast", token: admin, json: #"{"message":"  "}"#).status == .unprocessableContent)
                #expect(try await client.request(.post, "/api/v1/broadcast", token: admin, json: #"{"text":"hi"}"#).status == .badRequest)
                #expect(try await client.request(.post, "/api/v1/broadcast", token: admin, json: #"{"message":"Break until 11:00"}"#).status == .accepted)
                let message = try await reader.next()
                #expect(message.channel == "broadcast")
                let data = try #require(message.fields["data"] as? [String: Any])
                #expect(data["message"] as? String == "Break until 11:00")
                #expect(data["from"] as? String == TestApp.adminEmail)
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }
}
