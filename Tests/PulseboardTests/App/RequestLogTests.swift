import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

@testable import PulseboardApp
@testable import PulseboardClassroom
@testable import PulseboardDatabase
@testable import PulseboardKernel
@testable import PulseboardTracing
@testable import pulseboard

@Suite("Request log and task progress log", .throwawayPostgres, .timeLimit(.minutes(3)))
struct RequestLogTests {
    @Test func traceIdsComeFromTraceparentOrXRequestIdWhenWellFormed() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        #expect(TraceID.incoming(traceparent: traceparent, requestID: "other") == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(TraceID.incoming(traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", requestID: nil) == nil)
        #expect(TraceID.incoming(traceparent: "garbage", requestID: "job-42:retry.1") == "job-42:retry.1")
        #expect(TraceID.incoming(traceparent: nil, requestID: "two words") == nil)
        #expect(TraceID.incoming(traceparent: nil, requestID: String(repeating: "a", count: 129)) == nil)
        #expect(TraceID.incoming(traceparent: nil, requestID: "") == nil)
        let made = TraceID.generate()
        #expect(made.count == 32 && made.allSatisfy(\.isHexDigit) && made != TraceID.generate())
    }

    @Test func redactionKeepsNoSecretAndCapsBodies() throws {
        let headers = Redaction.headers([
            ("Authorization", "Bearer abc"), ("Cookie", "pb_session=pbs_0123456789"), ("X-CSRF-Token", "c"), ("Accept", "a"), ("accept", "b"),
            ("Referer", "http://h/api/v1/events?token=pbc_abcdefghijkl&x=1"), ("Content-Security-Policy", "default-src 'self'"),
        ])
        #expect(
            headers
                == #"{"accept":"a, b","authorization":"[redacted]","cookie":"[redacted]","referer":"http:\/\/h\/api\/v1\/events?token=[redacted]&x=1","x-csrf-token":"[redacted]"}"#
                || headers
                    == #"{"accept":"a, b","authorization":"[redacted]","cookie":"[redacted]","referer":"http://h/api/v1/events?token=[redacted]&x=1","x-csrf-token":"[redacted]"}"#
        )
        let body = try #require(
            Redaction.jsonBody(
                Data(
                    #"{"email":"a@b.c","password":"hunter22","refreshToken":"pbr_x","tokenType":"Bearer","nested":[{"newPassword":"p"}],"note":"key pbi_0123456789abcdef here","jwt":"eyJhbGciOi.eyJzdWIiOjF9.c2ln"}"#
                        .utf8)))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(object["password"] as? String == "[redacted]" && object["refreshToken"] as? String == "[redacted]")
        #expect(object["tokenType"] as? String == "Bearer" && object["email"] as? String == "a@b.c")
        #expect((object["nested"] as? [[String: String]])?.first?["newPassword"] == "[redacted]")
        #expect(object["note"] as? String == "key [redacted] here" && object["jwt"] as? String == "[redacted]")
        #expect(Redaction.jsonBody(Data("not json".utf8)) == nil)
        // A body with nothing shaped like a secret is kept as sent, without being decoded.
        let points = #"[{"name": "host.cpu", "value": 1.5, "tags": {"Host": "a"}}]"#
        #expect(Redaction.jsonBody(Data(points.utf8)) == points)
        #expect(Redaction.jsonBody(Data(#"[{"name": "x", "Token": "t"}]"#.utf8)) == #"[{"Token":"[redacted]","name":"x"}]"#)
        let large = try #require(Redaction.jsonBody(Data(("[\"" + String(repeating: "é", count: 5000) + "\"]").utf8)))
        #expect(large.utf8.count < Redaction.maxStoredBodyBytes + 40 && large.hasSuffix("bytes, cut]"))
    }

    /// Every request gets a row with its trace id, route, status, user and redacted bodies; the
    /// trace id is the caller's when well-formed and comes back as X-Request-Id; the admin API
    /// filters by status, route, user and time, and refuses anyone but an admin.
    @Test(arguments: TestEngine.all) func everyRequestIsRecordedAndListed(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let traced = try await client.request(
                .get, "/api/v1/series", token: admin, headers: [HTTPField.Name("traceparent")!: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
            #expect(traced.headers[HTTPField.Name("X-Request-Id")!] == "4bf92f3577b34da6a3ce929d0e0e4736")
            let named = try await client.request(.get, "/no-such-page", headers: [HTTPField.Name("X-Request-Id")!: "my-request-1"])
            #expect(named.headers[HTTPField.Name("X-Request-Id")!] == "my-request-1")
            let made = try await client.request(.post, "/api/v1/users", token: admin, json: #"{"email": 5}"#)
            let madeID = try #require(made.headers[HTTPField.Name("X-Request-Id")!])
            #expect(madeID.count == 32)
            // A request is recorded once its body is out, which the client may see first.
            let expected: Set = ["4bf92f3577b34da6a3ce929d0e0e4736", "my-request-1", madeID]
            try await waitUntil {
                await parts.operationsLog?.flush()
                let listed = try await client.request(.get, "/api/v1/logs/requests", token: admin).decodeDated(RequestList.self).requests
                return expected.isSubset(of: listed.map(\.traceID))
            }

            let all = try await client.request(.get, "/api/v1/logs/requests", token: admin)
            #expect(all.status == .ok)
            let requests = try all.decodeDated(RequestList.self).requests
            let series = try #require(requests.first { $0.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" })
            #expect(series.route == "/api/v1/series" && series.responseStatus == 200 && series.userID == 1 && series.method == "GET")
            #expect(series.responseBody == #"{"series":[]}"# && series.requestHeader.contains(#""authorization":"[redacted]""#))
            let missing = try #require(requests.first { $0.traceID == "my-request-1" })
            #expect(missing.route == "NotFound" && missing.responseStatus == 404 && missing.userID == nil && missing.endpoint == "/no-such-page")
            let bad = try #require(requests.first { $0.traceID == madeID })
            #expect(bad.responseStatus == 400 && bad.requestBody == #"{"email": 5}"# && bad.responseBody?.contains("email") == true)
            let login = try #require(requests.first { $0.route == "/auth/login" })
            #expect(login.requestBody?.contains(#""password":"[redacted]""#) == true)
            #expect(login.responseBody?.contains(#""accessToken":"[redacted]""#) == true)

            let failures = try await client.request(.get, "/api/v1/logs/requests?status=4xx", token: admin).decodeDated(RequestList.self).requests
            #expect(!failures.isEmpty && failures.allSatisfy { (400...499).contains($0.responseStatus) })
            let byRoute = try await client.request(.get, "/api/v1/logs/requests?route=/api/v1/series", token: admin).decodeDated(RequestList.self).requests
            #expect(byRoute.map(\.traceID) == ["4bf92f3577b34da6a3ce929d0e0e4736"])
            for user in ["1", TestApp.adminEmail] {
                let mine = try await client.request(.get, "/api/v1/logs/requests?user=\(user)", token: admin).decodeDated(RequestList.self).requests
                #expect(!mine.isEmpty && mine.allSatisfy { $0.userID == 1 })
            }
            let future = try await client.request(.get, "/api/v1/logs/requests?from=2999-01-01T00:00:00Z", token: admin).decodeDated(RequestList.self)
            #expect(future.requests.isEmpty)
            #expect(try await client.request(.get, "/api/v1/logs/requests?status=5x", token: admin).error?.field == "status")
            #expect(try await client.request(.get, "/api/v1/logs/requests?limit=0", token: admin).status == .badRequest)
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            #expect(try await client.request(.get, "/api/v1/logs/requests", token: instructor).status == .forbidden)
            #expect(try await client.request(.get, "/api/v1/logs/trace/my-request-1", token: instructor).status == .forbidden)
            #expect(try await client.request(.get, "/api/v1/logs/requests").status == .unauthorized)
            #expect(try await client.request(.get, "/api/v1/logs/trace/never-seen", token: admin).status == .notFound)
        }
    }

    /// Seed 003's point: from a request's trace id to every step of the work it started. The
    /// events of one ingest request are received and stored by the request, applied by the event
    /// processor, under the request's trace id; a roster upload and a submission record theirs.
    @Test(arguments: TestEngine.all) func aTraceLeadsFromTheRequestToEveryStep(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("traced", token: admin)
            let classToken = try #require(course.ingestToken)
            let sent = try await client.request(
                .post, "/api/v1/events?token=\(classToken)", json: "[" + ExtensionEvent.json("cell_executed", email: "s@example.com", cell: 0) + "]",
                headers: [HTTPField.Name("X-Request-Id")!: "events-1"])
            #expect(sent.status == .ok)
            _ = try await client.student("s@example.com", in: course.id, token: admin) { $0.cellsExecuted == 1 }
            // The processor records after it has published; give it the moment it needs.
            var steps: [TaskStep] = []
            for _ in 0..<50 where steps.count < 3 {
                await parts.operationsLog?.flush()
                steps = try await client.request(.get, "/api/v1/logs/trace/events-1", token: admin).decodeDated(OperationsLogReader.Trace.self).steps
                if steps.count < 3 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(steps.map(\.taskName) == Array(repeating: "event processing", count: 3))
            #expect(steps.map(\.stepName) == ["received", "stored", "applied"])
            #expect(steps.map(\.status) == [.start, .success, .success])
            #expect(steps.map(\.executionOrder) == [1, 2, 3])
            #expect(steps[1].outputData == #"{"duplicates":0,"stored":1}"#)
            #expect(steps[2].outputData == #"{"applied":1,"leftForSweep":0}"#)
            let trace = try await client.request(.get, "/api/v1/logs/trace/events-1", token: admin).decodeDated(OperationsLogReader.Trace.self)
            #expect(trace.requests.map(\.route) == ["/api/v1/events"])
            #expect(trace.requests.first?.requestHeader.contains(classToken) == false)

            // A roster upload: parse, enrol; one that cannot be read fails at parse.
            var csvHeaders: HTTPFields = [.contentType: "text/csv", HTTPField.Name("X-Request-Id")!: "roster-1"]
            let roster = try await client.request(
                .post, "/api/v1/classes/\(course.id)/students/csv", token: admin, headers: csvHeaders, body: "email\na@example.com\nb@example.com\n")
            #expect(roster.status == .ok)
            csvHeaders[HTTPField.Name("X-Request-Id")!] = "roster-2"
            let unreadable = try await client.request(
                .post, "/api/v1/classes/\(course.id)/students/csv", token: admin, headers: csvHeaders, body: "name\nno email column\n")
            #expect(unreadable.status == .unprocessableContent)
            await parts.operationsLog?.flush()
            let enrolled = try await client.request(.get, "/api/v1/logs/trace/roster-1", token: admin).decodeDated(OperationsLogReader.Trace.self).steps
            #expect(enrolled.map { "\($0.stepName) \($0.status.rawValue)" } == ["parse START", "parse SUCCESS", "enrol START", "enrol SUCCESS"])
            #expect(enrolled[3].outputData == #"{"alreadyEnrolled":0,"enrolled":2}"#)
            let failed = try await client.request(.get, "/api/v1/logs/trace/roster-2", token: admin).decodeDated(OperationsLogReader.Trace.self)
            #expect(failed.steps.map { "\($0.stepName) \($0.status.rawValue)" } == ["parse START", "parse FAILED"])
            #expect(failed.steps.last?.errorMessage?.isEmpty == false && failed.requests.first?.responseStatus == 422)
        }
    }

    /// The processor's retries are steps too: each failed attempt IN_PROGRESS with its error, then
    /// FAILED with what was left for the sweep; the sweep, later, finishes under the same trace id
    /// (it is stored with the event).
    @Test(arguments: TestEngine.all) func retriesAndTheSweepKeepTheTraceId(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("retries", token: admin)
            let log = try #require(parts.operationsLog)
            let progress = ClassProgress(store: parts.store)
            let channel = ClassChannel(hub: parts.hub, progress: progress, relay: nil, telemetry: parts.telemetry, logger: TestApp.logger)
            let broken = EventRouter(fallback: { _ in [SQLStatement("INSERT INTO no_such_table VALUES (1)")] })
            let failing = EventProcessor(
                store: parts.store, router: broken, telemetry: parts.telemetry, logger: TestApp.logger,
                channel: channel, log: log, retryDelays: [.milliseconds(1)])
            var event = try #require(
                try EventParser.parse(Data(ExtensionEvent.json("help", email: "r@example.com").utf8), classID: course.id, arrival: Date()).events.first)
            event.traceID = "retried-1"
            _ = try await parts.store.transaction(EventLog.rows([event], receivedAt: Date()).statementsAsNew)
            #expect(await failing.apply([event]) == false)
            let working = EventProcessor(
                store: parts.store, telemetry: parts.telemetry, logger: TestApp.logger, channel: channel, log: log)
            await working.sweep(olderThan: .zero)
            await log.flush()
            let steps = try await OperationsLogReader(store: parts.store).trace("retried-1").steps
            #expect(steps.map(\.status) == [.inProgress, .inProgress, .failed, .success])
            #expect(steps[0].errorMessage?.isEmpty == false && steps[0].stackTrace?.isEmpty == false)
            #expect(steps[2].outputData == #"{"applied":0,"leftForSweep":1}"#)
            #expect(steps[3].outputData == #"{"applied":1,"leftForSweep":0}"#)
        }
    }

    /// No secret a client sent or was sent reaches the request log, the task log or the log
    /// lines: every one is searched for in every column of both tables and in every line.
    @Test(arguments: TestEngine.all) func noSecretIsStoredOrLogged(engine: TestEngine) async throws {
        let lines = LogLines()
        var logger = Logger(label: "pulseboard-test") { _ in CapturingLogHandler(lines: lines) }
        logger.logLevel = .trace
        try await TestApp.run(engine: engine, logger: logger) { client, parts in
            var secrets = [TestApp.adminPassword]
            let pair = try await client.login()
            secrets += [pair.accessToken, pair.refreshToken]
            let refreshed = try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(pair.refreshToken)"}"#)
            let newPair = try refreshed.decode(TokenPair.self)
            secrets += [newPair.accessToken, newPair.refreshToken]
            let admin = newPair.accessToken
            let ingest = try await client.ingestToken(adminToken: admin)
            secrets.append(ingest.token)
            #expect(try await client.ingest(#"[{"name":"cpu","value":1}]"#, token: ingest.token).status == .ok)
            let course = try await client.createClass("secret", token: admin)
            let classToken = try #require(course.ingestToken)
            secrets.append(classToken)
            #expect(try await client.sendEvents([ExtensionEvent.json("help", email: "x@example.com")], classToken: classToken).status == .ok)
            let shown = try await client.request(.get, "/api/v1/classes/\(course.id)/token", token: admin)
            #expect(shown.text.contains(classToken))
            let user = try await client.request(
                .post, "/api/v1/users", token: admin, json: #"{"email":"new@example.com","password":"n3w-user-secret-pw","role":"student"}"#)
            #expect(user.status == .created)
            secrets.append("n3w-user-secret-pw")
            let userID = try user.decode(CreatedUser.self).id
            let changed = try await client.request(.patch, "/api/v1/users/\(userID)", token: admin, json: #"{"password":"an0ther-user-secret"}"#)
            #expect(changed.status == .ok)
            secrets.append("an0ther-user-secret")
            // A browser's form login and cookie.
            let form = try await client.request(
                .post, "/login", headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "pb_csrf=csrf-secret-123456"],
                body: "email=admin%40example.com&password=\(TestApp.adminPassword)&csrf=csrf-secret-123456")
            if let cookie = form.headers[.setCookie], let session = cookie.split(separator: ";").first?.split(separator: "=").last {
                secrets.append(String(session))
                _ = try await client.request(.get, "/api/v1/series", headers: [.cookie: "pb_session=\(session)"])
            }
            secrets.append("csrf-secret-123456")
            await parts.operationsLog?.flush()

            var stored: [String] = []
            for table in ["api_logs", "task_progress_logs"] {
                for row in try await parts.store.select(SQLStatement("SELECT * FROM \(table)")) {
                    stored += row.compactMap { $0.string }
                }
            }
            #expect(stored.count > 20)
            let logged = lines.all
            #expect(logged.count > 10)
            for secret in secrets {
                #expect(!stored.contains { $0.contains(secret) }, "a secret is in the request or task log: \(secret.prefix(6))…")
                #expect(!logged.contains { $0.contains(secret) }, "a secret is in the log lines: \(secret.prefix(6))…")
            }
        }
    }

    /// A full queue drops (and counts) rather than waits; retention removes old entries; with
    /// the log switched off nothing is recorded.
    @Test func aFullQueueDropsRetentionPrunesAndTheSwitchTurnsItOff() async throws {
        try await TestApp.run { client, parts in
            let log = OperationsLog(store: parts.store, telemetry: parts.telemetry, logger: TestApp.logger, capacity: 2)
            let old = Date(timeIntervalSinceNow: -10 * 86_400)
            for trace in ["t1", "t2", "t3", "t4"] {
                var task = TaskRecorder(log: log, traceID: trace, task: "test")
                task.record("step", .success)
            }
            let admin = try await client.login().accessToken
            #expect(try await client.request(.get, "/metrics", token: admin).text.contains("pulseboard_operations_log_dropped_total 2"))
            await log.flush()
            let reader = OperationsLogReader(store: parts.store)
            let (kept, dropped) = (try await reader.trace("t2").steps, try await reader.trace("t3").steps)
            #expect(kept.count == 1 && dropped.isEmpty)
            _ = try await parts.store.transaction(
                [SQLStatement("UPDATE task_progress_logs SET created_at = ? WHERE trace_id = 't1'", .integer(old.millisecondsSince1970))])
            _ = try await parts.store.transaction(OperationsLog.prune(before: Date(timeIntervalSinceNow: -7 * 86_400)))
            let (pruned, young) = (try await reader.trace("t1").steps, try await reader.trace("t2").steps)
            #expect(pruned.isEmpty && young.count == 1)
        }
        try await TestApp.run(configure: { $0.requestLog = false }) { client, parts in
            #expect(parts.operationsLog == nil)
            let admin = try await client.login().accessToken
            #expect(try await client.request(.get, "/api/v1/series", token: admin).status == .ok)
            #expect(try await parts.store.selectCount(SQLStatement("SELECT COUNT(*) FROM api_logs")) == 0)
        }
    }

    /// The CSV exports have seed 003's columns, a byte order mark, and cells a spreadsheet would
    /// run start with '; `pulseboard logs export --csv DIR` writes the same two files.
    @Test func theLogsExportAsCSVFiles() async throws {
        try await TestApp.run { client, parts in
            let admin = try await client.login().accessToken
            _ = try await client.request(.get, "/api/v1/series", token: admin, headers: [HTTPField.Name("X-Request-Id")!: "csv-1"])
            var task = TaskRecorder(log: parts.operationsLog, traceID: "csv-1", task: "=HYPERLINK(\"x\")")
            task.record("-step", .failed, error: CancellationError())
            await parts.operationsLog?.flush()
            let requests = try await client.request(.get, "/api/v1/logs/requests.csv?route=/api/v1/series", token: admin)
            #expect(requests.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(requests.text.hasPrefix("\u{FEFF}id,trace_id,created_at,method,route,endpoint,request_header,request_body,response_status,"))
            #expect(requests.text.contains(",csv-1,"))
            let steps = try await client.request(.get, "/api/v1/logs/tasks.csv", token: admin).text
            #expect(
                steps.hasPrefix(
                    "\u{FEFF}id,trace_id,created_at,task_name,step_name,status,execution_order,input_data,output_data,error_message,stack_trace\r\n"))
            #expect(steps.contains(#"'=HYPERLINK(""x"")"#) && steps.contains(",'-step,FAILED,1,"))

            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-export-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let command = try LogsCommand.Export.parse(["--data-dir", parts.config.dataDirectory, "--csv", folder.path])
            try await command.run()
            let exported = try Data(contentsOf: folder.appendingPathComponent("task_progress_logs.csv"))
            #expect(exported == Data(steps.utf8))
            let exportedRequests = try String(contentsOf: folder.appendingPathComponent("api_logs.csv"), encoding: .utf8)
            #expect(exportedRequests.contains(",csv-1,") && exportedRequests.contains(",/auth/login,"))
            let badTime = try LogsCommand.Export.parse(["--data-dir", parts.config.dataDirectory, "--csv", folder.path, "--from", "yesterday"])
            await #expect(throws: (any Error).self) { try await badTime.run() }
        }
    }
}

private struct RequestList: Decodable {
    var requests: [RequestRecord]
}

private struct CreatedUser: Decodable {
    var id: Int64
}

extension TestResponse {
    /// Decodes an answer whose times are ISO-8601 text, as the server writes them.
    func decodeDated<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder.pulseboard.decode(T.self, from: Data(buffer: body))
    }
}

/// The lines a logger wrote, rendered as the JSON handler renders them (metadata included).
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let message = event.message
        let rendered = (try? JSONLogHandler.render(label: "test", level: event.level, message: "\(message)", metadata: merged)).map {
            String(decoding: $0, as: UTF8.self)
        }
        lines.append(rendered ?? "\(message) \(merged)")
    }
}
