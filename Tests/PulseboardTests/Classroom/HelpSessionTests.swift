import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardDatabase

/// The extension repeats `help` every 10 s while a student's button is on; an instructor's
/// "Helped" must not be undone by the next repeat.
@Suite("Help sessions", .throwawayPostgres, .timeLimit(.minutes(2)))
struct HelpSessionTests {
    @Test(arguments: TestEngine.all) func aRequestClosedByTheInstructorStaysClosedForTheRestOfItsSession(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let instructorEmail = "helper@example.com"
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin, email: instructorEmail)
            let course = try await client.createClass("help", token: instructor)
            let now = Date()
            let ada = "ada@example.com"
            func send(_ events: [String]) async throws {
                #expect(try await client.sendEvents(events, classToken: course.ingestToken).status == .ok)
            }
            /// Sends `events` and then a cell run at `marker`, and waits until that has been applied.
            func apply(_ events: [String], email: String = ada, marker: Int, at time: Date) async throws -> ProgressAnswer.Student {
                try await send(events + [ExtensionEvent.json("cell_executed", email: email, time: time, cell: marker)])
                return try await client.student(email, in: course.id, token: instructor) { $0.cellIndex == marker }
            }
            func openRequests(_ email: String) async throws -> Int64 {
                try await parts.store.selectCount(
                    SQLStatement(
                        "SELECT COUNT(*) FROM help_requests h JOIN students s ON s.id = h.student_id WHERE s.email = ? AND h.class_id = ?", .text(email),
                        .integer(course.id)))
            }

            // The button is on: three repeats, one request.
            let asking = try await apply(
                (0..<3).map { ExtensionEvent.json("help", email: ada, time: now.addingTimeInterval(Double(-40 + 10 * $0)), cell: 2) }, marker: 2,
                at: now.addingTimeInterval(-19))
            let request = try #require(asking.helpRequest)
            #expect(asking.status == "needs_help")
            #expect(try await openRequests(ada) == 1)

            // Helped; the repeats that follow (the button is still on) open nothing.
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/help/\(request.id)/resolve", token: instructor).status == .noContent)
            let repeated = try await apply(
                [
                    ExtensionEvent.json("help", email: ada, time: now.addingTimeInterval(-10), cell: 2),
                    ExtensionEvent.json("help", email: ada, time: now, cell: 2),
                ],
                marker: 3, at: now)
            #expect(repeated.helpRequest == nil)
            #expect(repeated.status != "needs_help")
            #expect(repeated.helped?.by == instructorEmail)
            #expect(try await openRequests(ada) == 1)

            // The student turns the button off and on again: a new request.
            let again = try await apply(
                [ExtensionEvent.json("help_stop", email: ada, time: now), ExtensionEvent.json("help", email: ada, time: now, cell: 4)], marker: 4, at: now)
            #expect(again.helpRequest != nil && again.helpRequest?.id != request.id)
            #expect(again.helped == nil)

            // Helped, then the button left on without repeats (JupyterLab closed): after the quiet
            // period the card no longer says helped, and a new `help` opens a new request.
            let bo = "bo@example.com"
            let old = now.addingTimeInterval(-200)
            let first = try await apply([ExtensionEvent.json("help", email: bo, time: old, cell: 1)], email: bo, marker: 1, at: old)
            let boRequest = try #require(first.helpRequest)
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/help/\(boRequest.id)/resolve", token: instructor).status == .noContent)
            let quiet = try await client.student(bo, in: course.id, token: instructor) { $0.helpRequest == nil }
            #expect(quiet.helped == nil)
            let later = try await apply([ExtensionEvent.json("help", email: bo, time: now, cell: 5)], email: bo, marker: 5, at: now)
            #expect(later.helpRequest != nil && later.helpRequest?.id != boRequest.id)
            #expect(try await openRequests(bo) == 2)
        }
    }
}
