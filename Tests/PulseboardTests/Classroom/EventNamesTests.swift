import CompressNIO
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import PulseboardDatabase
@testable import PulseboardKernel

/// The source documents' own clients name events and fields their way (document 004):
/// `cell_execution…`, `notebook_save`, `session_start`, `userId`, `success`, `duration`. They
/// work like the extension's names, and gzipped bodies are read as the document's client sends them.
@Suite("Learning events: the source documents' names", .throwawayPostgres, .timeLimit(.minutes(2)))
struct EventNamesTests {
    static func event(_ type: String, _ fields: String) -> String {
        #"{"eventId":"\#(UUID().uuidString)","eventType":"\#(type)","eventTime":"\#(Timestamp.format(Date()))",\#(fields)}"#
    }

    @Test(arguments: TestEngine.all) func theSeedsNamesAndFieldsAreUnderstood(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: try await client.login().accessToken)
            let course = try await client.createClass("seeds", token: instructor)
            let student = #""userId":"Student-42","sessionId":"s-42","notebookPath":"week1/intro.ipynb""#
            let events = [
                Self.event("session_start", student),
                Self.event("cell_execution_start", student + #","cellIndex":0"#),
                Self.event("cell_execution_complete", student + #","cellIndex":0,"success":true,"duration":15.5"#),
                Self.event("cell_execution", student + #","cellIndex":1,"success":false"#),
                Self.event("cell_execution_error", student + #","cellIndex":2,"errorMessage":"NameError""#),
                Self.event("notebook_save", student),
            ]
            // Gzipped, as the document's client sends its batches.
            var body = ByteBuffer(string: "[" + events.joined(separator: ",") + "]")
            let headers: HTTPFields = [.contentType: "application/json", .contentEncoding: "gzip", .origin: "http://localhost:8888"]
            let response = try await client.executeRequest(
                uri: "/api/v1/events?token=\(try #require(course.ingestToken))", method: .post, headers: headers, body: try body.compress(with: .gzip()))
            #expect(response.status == .ok, "\(response.text)")

            // userId identifies the student; three executions, two of them failed.
            let card = try await client.student("student-42", in: course.id, token: instructor) { $0.cellsExecuted == 3 }
            #expect(card.recentErrors == 2)
            let executions = try await parts.store.select(
                SQLStatement("SELECT cell_index, has_error, duration_ms FROM cell_executions WHERE class_id = ? ORDER BY cell_index", .integer(course.id)))
            #expect(executions.map { $0[0].int } == [0, 1, 2])
            #expect(executions.map { $0[1].int } == [0, 1, 1])
            #expect(executions.first?[2].double == 15.5)
            let saved = try await parts.store.select(SQLStatement("SELECT action FROM notebook_accesses WHERE class_id = ?", .integer(course.id)))
            #expect(saved.map { $0[0].string } == ["saved"])
            // The raw stream keeps what was sent.
            let types = try await parts.store.select(
                SQLStatement("SELECT payload FROM events WHERE class_id = ? ORDER BY event_time, id", .integer(course.id)))
            #expect(types.contains { $0[0].string?.contains(#""eventType":"cell_execution_error""#) == true })
        }
    }
}
