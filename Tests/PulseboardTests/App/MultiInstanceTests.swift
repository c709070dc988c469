import Foundation
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import PostgresNIO
import Synchronization
import Testing

@testable import PulseboardApp
@testable import PulseboardKernel
@testable import PulseboardPostgres

/// Two instances on one PostgreSQL database, as behind a load balancer.
@Suite("Several instances on PostgreSQL", .throwawayPostgres, .timeLimit(.minutes(2)), .enabled(if: TestEngine.all.contains(.postgres)))
struct MultiInstanceTests {
    @Test func livePointsCrossInstancesInOrderEvenAfterTheListenConnectionDrops() async throws {
        try await Self.twoInstances { url, a, b in
            // A token issued by one instance is valid on the other.
            let token = try await a.login().accessToken
            try await b.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                #expect(try await reader.authenticate(token, on: outbound).type == "authenticated")
                #expect(try await reader.subscribe("metrics:cross", on: outbound).type == "subscribed")
                for value in 1...3 {
                    #expect(try await a.ingest(#"[{"name":"cross","value":\#(value)}]"#, token: token).status == .ok)
                }
                var values: [Double] = []
                while values.count < 3 { values += try await reader.next().values }
                #expect(values == [1, 2, 3])

                // Cut every LISTEN connection; what is ingested meanwhile still arrives.
                try await Self.terminateListeners(url)
                for value in 4...6 {
                    #expect(try await a.ingest(#"[{"name":"cross","value":\#(value)}]"#, token: token).status == .ok)
                }
                while values.count < 6 { values += try await reader.next().values }
                #expect(values == [1, 2, 3, 4, 5, 6])
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test func aDemotionOnOneInstanceEndsTheSubscriptionsOnTheOther() async throws {
        try await Self.twoInstances { _, a, b in
            let admin = try await a.login().accessToken
            let instructor = try await a.tokenForNewUser(role: .instructor, adminToken: admin)
            let instructorID = try await a.userID(instructor)
            try await b.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(instructor, on: outbound)
                #expect(try await reader.subscribe("metrics:cpu", on: outbound).type == "subscribed")
                #expect(try await a.request(.patch, "/api/v1/users/\(instructorID)", token: admin, json: #"{"role":"student"}"#).status == .ok)
                // The demotion ended the token too, so the whole socket ends.
                let revoked = try await reader.next()
                #expect(revoked.type == "error" && revoked.code == "revoked")
            }
        }
    }

    /// Events taken by A and a help request resolved on A reach an instructor's class view and
    /// progress view on B, in order, also when B's LISTEN connection was cut in between.
    @Test func aClassViewOnOneInstanceFollowsEventsTakenByTheOther() async throws {
        try await Self.twoInstances { url, a, b in
            let admin = try await a.login().accessToken
            let instructor = try await a.tokenForNewUser(role: .instructor, adminToken: admin)
            let course = try await a.createClass("across", token: instructor)
            let progress = "progress:\(course.id):student001@example.com"
            try await b.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(instructor, on: outbound)
                #expect(try await reader.subscribe("class:\(course.id)", on: outbound).type == "subscribed")
                #expect(try await a.sendEvents([ExtensionEvent.json("help", cell: 2)], classToken: course.ingestToken).status == .ok)
                let update = try await reader.next()
                let card = try #require((update.fields["data"] as? [String: Any])?["student"] as? [String: Any])
                #expect(update.channel == "class:\(course.id)" && update.seq == 1)
                #expect(card["status"] as? String == "needs_help")
                #expect(try await reader.subscribe(progress, on: outbound).type == "subscribed")

                // B's LISTEN connection is cut; what A takes meanwhile still arrives, in order.
                try await Self.terminateListeners(url)
                for cell in 3...5 {
                    let ran = ExtensionEvent.json("cell_executed", cell: cell, hasError: false)
                    #expect(try await a.sendEvents([ran], classToken: course.ingestToken).status == .ok)
                }
                let open = try #require(try await a.progress(course.id, token: instructor).students?.first?.helpRequest)
                let resolved = try await a.request(.post, "/api/v1/classes/\(course.id)/help/\(open.id)/resolve", token: instructor)
                #expect(resolved.status == .noContent)
                // Every event's progress, in order, and cards up to the resolved one, numbered
                // without a gap (events applied together make one card).
                var cells: [Int] = []
                var classSeqs: [Int] = []
                var helpOpen = true
                while cells.count < 3 || helpOpen {
                    let message = try await reader.next()
                    let data = message.fields["data"] as? [String: Any]
                    if message.channel == progress, let cell = data?["cellIndex"] as? Int { cells.append(cell) }
                    if message.channel == "class:\(course.id)", let seq = message.seq, let card = data?["student"] as? [String: Any] {
                        classSeqs.append(seq)
                        helpOpen = card["helpRequest"] != nil
                    }
                }
                #expect(cells == [3, 4, 5])
                #expect(classSeqs == Array(2..<(2 + classSeqs.count)))
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test func handInsAndGradesOnOneInstanceReachTheOther() async throws {
        try await Self.twoInstances { url, a, b in
            let scene = try await SubmissionScene.make(a)
            let aliceID = try await a.userID(scene.alice)
            // A hand-in on A refreshes the class's views on B (the assignment page listens there).
            let handedIn = Mutex<Int64?>(nil)
            try await b.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(scene.owner, on: outbound)
                #expect(try await reader.subscribe("class:\(scene.classID)", on: outbound).type == "subscribed")
                let submitted = try await a.submit(Notebook.json("print(3)"), to: scene.assignmentID, token: scene.alice)
                let card = try await reader.next()
                #expect(card.channel == "class:\(scene.classID)")
                #expect(((card.fields["data"] as? [String: Any])?["student"] as? [String: Any])?["email"] as? String == "alice@example.com")
                handedIn.withLock { $0 = try? submitted.decode(SubmissionAnswer.self).id }
                try await outbound.close(.normalClosure, reason: nil)
            }
            let submissionID = try #require(handedIn.withLock { $0 })
            try await b.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(scene.alice, on: outbound)
                #expect(try await reader.subscribe("notifications:\(aliceID)", on: outbound).type == "subscribed")
                #expect(try await reader.subscribe("broadcast", on: outbound).type == "subscribed")
                // The grade and the announcement are given while B's LISTEN connection is away.
                try await Self.terminateListeners(url)
                #expect(try await a.request(.patch, "/api/v1/submissions/\(submissionID)", token: scene.owner, json: #"{"grade":64}"#).status == .ok)
                let graded = try await reader.next()
                #expect(graded.channel == "notifications:\(aliceID)")
                #expect((graded.fields["data"] as? [String: Any])?["grade"] as? Double == 64)
                #expect(try await a.request(.post, "/api/v1/broadcast", token: scene.admin, json: #"{"message":"Lab closes at 5"}"#).status == .accepted)
                let announcement = try await reader.next()
                #expect(announcement.channel == "broadcast")
                #expect((announcement.fields["data"] as? [String: Any])?["message"] as? String == "Lab closes at 5")
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    /// Two instances on a new database (the JWT secret generated once and shared through it),
    /// each served on a free port; their data folders are removed afterwards.
    static func twoInstances(_ test: @Sendable (_ url: String, _ a: any TestClientProtocol, _ b: any TestClientProtocol) async throws -> Void)
        async throws
    {
        let url = try await TestPostgres.shared.newDatabase()
        let configs = (0..<2).map { _ in
            TestApp.config {
                $0.databaseURL = url
                $0.jwtSecret = nil
            }
        }
        defer { for config in configs { try? FileManager.default.removeItem(atPath: config.dataDirectory) } }
        let first = try await Pulseboard.build(configs[0], logger: TestApp.logger)
        let second = try await Pulseboard.build(configs[1], logger: TestApp.logger)
        try await first.application.test(.live) { a in
            try await second.application.test(.live) { b in
                try await test(url, a, b)
            }
        }
    }

    static func terminateListeners(_ url: String) async throws {
        let client = PostgresClient(configuration: try PostgresEngine.configuration(url), backgroundLogger: TestApp.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            let rows = try await client.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            )
            .collect()
            #expect(!rows.isEmpty, "no LISTEN connection was found")
            group.cancelAll()
        }
    }
}

@Suite("PostgreSQL outages", .throwawayPostgres, .timeLimit(.minutes(2)), .enabled(if: TestEngine.all.contains(.postgres)))
struct OutageTests {
    /// While the database is down, requests that need it fail fast with 503 and Retry-After,
    /// `/health` says so, WebSockets stay open; when it returns everything resumes.
    @Test func requestsFailFastWhileTheDatabaseIsDownAndResumeAfter() async throws {
        let postgres = TestPostgres()
        let url = try await postgres.newDatabase()
        do {
            try await TestApp.run(
                engine: .postgres, .live,
                configure: {
                    $0.databaseURL = url
                    $0.databaseWait = .seconds(2)
                },
                // Its stop after the outage is where a loaded run has hung: name the service.
                logger: CheckpointLogHandler.logger
            ) { client, parts in
                let token = try await client.login().accessToken
                let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: token)
                let course = try await client.createClass("outage", token: instructor)
                try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                    var reader = LiveReader(inbound)
                    _ = try await reader.authenticate(token, on: outbound)
                    _ = try await reader.subscribe("metrics:outage", on: outbound)
                    // An instructor's socket, whose subscriptions need the database to be decided.
                    try await client.ws("/ws", configuration: bigFrames) { teacherInbound, teacherOutbound, _ in
                        var teacher = LiveReader(teacherInbound)
                        _ = try await teacher.authenticate(instructor, on: teacherOutbound)
                        Checkpoints.reached("stopping PostgreSQL (first)")
                        try await postgres.stop()
                        Checkpoints.reached("a subscription while PostgreSQL is down")
                        // The database did not answer: not "forbidden" but "try again".
                        let unchecked = try await teacher.subscribe("class:\(course.id)", on: teacherOutbound)
                        #expect(unchecked.type == "error" && unchecked.code == "unavailable", "\(unchecked.fields)")
                        Checkpoints.reached("starting PostgreSQL (first)")
                        try await postgres.start()
                        Checkpoints.reached("subscribing again")
                        var answer = try await teacher.subscribe("class:\(course.id)", on: teacherOutbound)
                        let deadline = ContinuousClock.now + .seconds(30)
                        while answer.type != "subscribed", ContinuousClock.now < deadline {
                            try await Task.sleep(for: .milliseconds(200))
                            answer = try await teacher.subscribe("class:\(course.id)", on: teacherOutbound)
                        }
                        #expect(answer.type == "subscribed", "\(answer.fields)")
                        try await teacherOutbound.close(.normalClosure, reason: nil)
                        Checkpoints.reached("closing the instructor's socket")
                    }

                    Checkpoints.reached("stopping PostgreSQL (second)")
                    try await postgres.stop()
                    Checkpoints.reached("requests while PostgreSQL is down")
                    let clock = ContinuousClock()
                    let start = clock.now
                    let refused = try await client.ingest(#"[{"name":"outage","value":1}]"#, token: token, idempotencyKey: "during-outage")
                    #expect(refused.status == .serviceUnavailable)
                    #expect(refused.headers[.retryAfter] != nil)
                    // The pool gives up after 2 s; without that wait a request would hang until the
                    // test's time limit. The bound only tells "answers" from "hangs": a loaded CI
                    // machine took 4.6 s, so it is far from 2 s on purpose.
                    #expect(clock.now - start < .seconds(20))
                    let health = try await client.request(.get, "/health")
                    #expect(health.status == .serviceUnavailable)
                    #expect(health.text.contains(#""listen":"reconnecting""#))
                    #expect(try await client.request(.get, "/metrics").text.contains("pulseboard_listen_connected 0"))
                    #expect(clock.now - start < .seconds(40))
                    // The WebSocket is still open.
                    try await outbound.send(#"{"op":"ping"}"#)
                    #expect(try await reader.next().type == "pong")

                    Checkpoints.reached("starting PostgreSQL (second)")
                    try await postgres.start()
                    Checkpoints.reached("ingesting after the outage")
                    try await waitUntil {
                        try await client.ingest(#"[{"name":"outage","value":1}]"#, token: token, idempotencyKey: "during-outage").status == .ok
                    }
                    Checkpoints.reached("reading the point live")
                    #expect(try await reader.next().values == [1])
                    Checkpoints.reached("health and metrics after the outage")
                    #expect(try await client.request(.get, "/health").status == .ok)
                    try await waitUntil { try await client.request(.get, "/health").text.contains(#""listen":"connected""#) }
                    let metrics = try await client.request(.get, "/metrics").text
                    #expect(metrics.contains("pulseboard_listen_connected 1"))
                    // Leased: the LISTEN connection (for as long as it is up); idle: at least the one
                    // that counted the pool's connections on the server; the pool's size is the setting's.
                    func gauge(_ name: String) -> Double? {
                        metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
                    }
                    #expect(gauge("pulseboard_db_connections_in_use") ?? 0 >= 1)
                    #expect(gauge("pulseboard_db_connections_idle") ?? 0 >= 1)
                    #expect(gauge("pulseboard_db_connections_max") == Double(parts.config.databasePoolSize))
                    try await outbound.close(.normalClosure, reason: nil)
                }
            }
        } catch {
            await postgres.shutDown()
            throw error
        }
        await postgres.shutDown()
    }
}
