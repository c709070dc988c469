import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardApp
@testable import PulseboardKernel

/// A student's working sessions: each with the cells run in it (notebook, cell, type, runs,
/// failed runs), and the timeline of one session at a time.
@Suite("A student's sessions", .throwawayPostgres)
struct StudentSessionsTests {
    struct Sessions: Decodable {
        struct Session: Decodable {
            struct Cell: Decodable, Equatable {
                var notebook: String
                var cellIndex: Int64?
                var cellType: String?
                var executions: Int
                var errors: Int
            }

            var sessionId: String
            var endedAt: String?
            var executions: Int
            var errors: Int
            var cells: [Cell]
        }

        var sessions: [Session]
    }

    struct Events: Decodable {
        struct Event: Decodable {
            var eventId: String
        }

        var events: [Event]
    }

    static func event(_ id: String, _ type: String, session: String, at time: Date, cell: Int? = nil, cellType: String = "code", failed: Bool = false)
        -> String
    {
        var fields = [
            #""eventId":"\#(id)""#, #""eventType":"\#(type)""#, #""eventTime":"\#(Timestamp.format(time))""#,
            #""emailAddress":"s@example.com""#, #""sessionId":"\#(session)""#, #""notebookPath":"week1.ipynb""#,
        ]
        if let cell { fields += [#""cellIndex":\#(cell)"#, #""cellType":"\#(cellType)""#, #""hasError":\#(failed)"#] }
        return "{" + fields.joined(separator: ",") + "}"
    }

    @Test(arguments: TestEngine.all) func sessionsListTheirCellsAndTheTimelineShowsOne(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("sessions", token: admin)
            let start = Date(timeIntervalSinceNow: -3600)
            let morning = [
                Self.event("m1", "session_start", session: "morning", at: start),
                Self.event("m2", "cell_executed", session: "morning", at: start.addingTimeInterval(10), cell: 0),
                Self.event("m3", "cell_executed", session: "morning", at: start.addingTimeInterval(20), cell: 0, failed: true),
                Self.event("m4", "cell_executed", session: "morning", at: start.addingTimeInterval(30), cell: 1, cellType: "markdown"),
                Self.event("m5", "session_end", session: "morning", at: start.addingTimeInterval(40)),
            ]
            let afternoon = [Self.event("a1", "cell_executed", session: "afternoon", at: start.addingTimeInterval(1800), cell: 2)]
            #expect(try await client.sendEvents(morning + afternoon, classToken: course.ingestToken).status == .ok)
            _ = try await client.student("s@example.com", in: course.id, token: admin) { $0.cellsExecuted == 4 }

            let base = "/api/v1/classes/\(course.id)/students/s@example.com"
            let sessions = try await client.request(.get, base + "/sessions", token: admin).decode(Sessions.self).sessions
            #expect(sessions.map(\.sessionId) == ["afternoon", "morning"])
            let first = try #require(sessions.last)
            #expect(first.executions == 3 && first.errors == 1 && first.endedAt != nil)
            #expect(
                first.cells == [
                    .init(notebook: "week1.ipynb", cellIndex: 0, cellType: "code", executions: 2, errors: 1),
                    .init(notebook: "week1.ipynb", cellIndex: 1, cellType: "markdown", executions: 1, errors: 0),
                ])
            #expect(sessions.first?.endedAt == nil && sessions.first?.cells.map(\.cellIndex) == [2])

            let morningEvents = try await client.request(.get, base + "/timeline?sessionId=morning", token: admin).decode(Events.self).events
            #expect(morningEvents.map(\.eventId) == ["m1", "m2", "m3", "m4", "m5"])
            let all = try await client.request(.get, base + "/timeline", token: admin).decode(Events.self).events
            #expect(all.count == 6)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            #expect(try await client.request(.get, base + "/sessions", token: student).status == .forbidden)
            #expect(try await client.request(.get, "/api/v1/classes/999999/students/s@example.com/sessions", token: admin).status == .notFound)
        }
    }
}
