import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import PulseboardCourses
@testable import PulseboardKernel

@Suite("Assignments", .throwawayPostgres)
struct AssignmentsTests {
    struct Progress: Decodable {
        struct Student: Decodable {
            var email: String
            var opened: Bool
            var cellsRun: Int
            var furthestCell: Int?
            var errors: Int
        }

        var students: [Student]
    }

    @Test(arguments: TestEngine.all) func assignmentsBelongToClassesAndEachRoleSeesItsOwn(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let stranger = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin, email: "student001@example.com")
            let outsider = try await client.tokenForNewUser(role: .student, adminToken: admin)
            let course = try await client.createClass("homework", token: owner)
            let token = try #require(course.ingestToken)
            #expect(try await client.sendEvents([ExtensionEvent.json("notebook_opened", notebook: "hw/1.ipynb")], classToken: token).status == .ok)
            try await waitUntil { try await client.request(.get, "/api/v1/me/progress", token: student).text.contains("homework") }

            let due = Timestamp.format(Date().addingTimeInterval(86_400))
            func create(_ json: String, as token: String) async throws -> TestResponse {
                try await client.request(.post, "/api/v1/assignments", token: token, json: json)
            }
            let missing = try await create(#"{"classId":999999,"title":"T","notebookPath":"hw/1.ipynb"}"#, as: owner)
            #expect(missing.status == .notFound)
            #expect(missing.error?.field == "classId")
            let valid = #"{"classId":\#(course.id),"title":"Homework 1","notebookPath":"hw/1.ipynb","dueAt":"\#(due)"}"#
            #expect(try await create(valid, as: stranger).status == .forbidden)
            #expect(try await create(valid, as: student).status == .forbidden)
            #expect(
                try await create(#"{"classId":\#(course.id),"title":"T","notebookPath":"hw/1.ipynb","dueAt":"tomorrow"}"#, as: owner).error?.field == "dueAt")
            let past = try await create(#"{"classId":\#(course.id),"title":"T","notebookPath":"hw/1.ipynb","dueAt":"2020-01-01T00:00:00Z"}"#, as: owner)
            #expect(past.status == .unprocessableContent)
            #expect(try await create(#"{"classId":\#(course.id),"title":"","notebookPath":"hw/1.ipynb"}"#, as: owner).status == .unprocessableContent)
            #expect(try await create(#"{"classId":"x","title":"T","notebookPath":"p"}"#, as: owner).status == .badRequest)
            let created = try await create(valid, as: owner)
            #expect(created.status == .created)
            struct Created: Decodable { var id: Int64 }
            let id = try created.decode(Created.self).id
            let uri = "/api/v1/assignments/\(id)"

            #expect(try await client.request(.get, "/api/v1/assignments", token: owner).text.contains("Homework 1"))
            #expect(try await client.request(.get, "/api/v1/assignments?classId=\(course.id)", token: student).text.contains("Homework 1"))
            #expect(try await client.request(.get, "/api/v1/assignments", token: stranger).text == #"{"assignments":[]}"#)
            #expect(try await client.request(.get, "/api/v1/assignments", token: outsider).text == #"{"assignments":[]}"#)
            #expect(try await client.request(.get, "/api/v1/assignments?classId=x", token: owner).status == .badRequest)
            #expect(try await client.request(.get, uri, token: owner).status == .ok)
            #expect(try await client.request(.get, uri, token: student).status == .ok)
            #expect(try await client.request(.get, uri, token: stranger).status == .forbidden)
            #expect(try await client.request(.get, uri, token: outsider).status == .notFound)
            #expect(try await client.request(.get, uri + "/progress", token: student).status == .forbidden)

            #expect(try await client.request(.patch, uri, token: owner, json: #"{"title":"Homework one"}"#).text.contains("Homework one"))
            #expect(try await client.request(.patch, uri, token: owner, json: #"{"classId":999}"#).status == .unprocessableContent)
            #expect(try await client.request(.put, uri, token: owner, json: #"{"title":"Only a title"}"#).status == .badRequest)
            #expect(try await client.request(.patch, uri, token: student, json: #"{"title":"Mine now"}"#).status == .forbidden)
            let put = try await client.request(.put, uri, token: owner, json: #"{"title":"Homework 1","notebookPath":"hw/1.ipynb"}"#)
            #expect(put.status == .ok && !put.text.contains("dueAt"))

            // Progress comes from the events of the assignment's notebook.
            let events = [
                ExtensionEvent.json("cell_executed", notebook: "hw/1.ipynb", cell: 0, hasError: false),
                ExtensionEvent.json("cell_executed", notebook: "hw/1.ipynb", cell: 1, hasError: false),
                ExtensionEvent.json("cell_executed", notebook: "hw/1.ipynb", cell: 2, hasError: true, error: "KeyError"),
                ExtensionEvent.json("cell_executed", email: "other@example.com", notebook: "elsewhere.ipynb", cell: 5, hasError: false),
            ]
            #expect(try await client.sendEvents(events, classToken: token).status == .ok)
            try await waitUntil { try await client.request(.get, uri + "/progress", token: owner).text.contains(#""cellsRun":3"#) }
            let progress = try await client.request(.get, uri + "/progress", token: owner).decode(Progress.self)
            #expect(progress.students.map(\.email) == ["other@example.com", "student001@example.com"])
            let mine = try #require(progress.students.last)
            #expect(mine.opened && mine.cellsRun == 3 && mine.furthestCell == 1 && mine.errors == 1)
            #expect(progress.students.first?.opened == false)

            #expect(try await client.request(.delete, uri, token: student).status == .forbidden)
            #expect(try await client.request(.delete, uri, token: owner).status == .noContent)
            #expect(try await client.request(.get, uri, token: owner).status == .notFound)
        }
    }
}
