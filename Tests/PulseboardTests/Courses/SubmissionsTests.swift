import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardCourses
@testable import PulseboardDatabase
@testable import PulseboardKernel

/// A class with an assignment, its instructor, another instructor, two enrolled students and
/// one who is not enrolled.
struct SubmissionScene {
    var admin: String
    var owner: String
    var stranger: String
    var alice: String
    var bob: String
    var outsider: String
    var classID: Int64
    var assignmentID: Int64
    var assignmentCreatedAt: String

    static func make(_ client: any TestClientProtocol) async throws -> SubmissionScene {
        let admin = try await client.login().accessToken
        let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
        let stranger = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
        let alice = try await client.tokenForNewUser(role: .student, adminToken: admin, email: "alice@example.com")
        let bob = try await client.tokenForNewUser(role: .student, adminToken: admin, email: "bob@example.com")
        let outsider = try await client.tokenForNewUser(role: .student, adminToken: admin)
        let course = try await client.createClass("nb", token: owner)
        for email in ["alice@example.com", "bob@example.com"] {
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/students", token: owner, json: #"{"email":"\#(email)"}"#).status == .created)
        }
        let due = Timestamp.format(Date().addingTimeInterval(86_400))
        let created = try await client.request(
            .post, "/api/v1/assignments", token: owner, json: #"{"classId":\#(course.id),"title":"Loops","notebookPath":"hw/loops.ipynb","dueAt":"\#(due)"}"#)
        try #require(created.status == .created)
        struct Created: Decodable {
            var id: Int64
            var createdAt: String
        }
        let assignment = try created.decode(Created.self)
        return SubmissionScene(
            admin: admin, owner: owner, stranger: stranger, alice: alice, bob: bob, outsider: outsider, classID: course.id, assignmentID: assignment.id,
            assignmentCreatedAt: assignment.createdAt)
    }
}

struct SubmissionAnswer: Decodable {
    struct Version: Decodable {
        var version: Int
        var late: Bool
        var size: Int
    }

    var id: Int64
    var assignmentId: Int64
    var studentId: Int64
    var studentEmail: String
    var version: Int
    var late: Bool
    var grade: Double?
    var feedback: String?
    var gradedVersion: Int?
    var versions: [Version]
}

struct SubmissionListAnswer: Decodable {
    var submissions: [SubmissionAnswer]
}

struct UserIdentity: Decodable {
    var id: Int64
}

enum Notebook {
    static func json(_ source: String) -> String {
        #"{"nbformat":4,"nbformat_minor":5,"metadata":{"kernelspec":{"name":"python3"}},"cells":[{"cell_type":"code","source":"\#(source)","metadata":{},"outputs":[],"execution_count":1}]}"#
    }
}

extension TestClientProtocol {
    func submit(_ body: String, to assignmentID: Int64?, token: String, query: String = "") async throws -> TestResponse {
        let uri = "/api/v1/submissions?" + (assignmentID.map { "assignmentId=\($0)" } ?? "") + query
        return try await executeRequest(
            uri: uri, method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/x-ipynb+json"], body: ByteBuffer(string: body))
    }

    func userID(_ token: String) async throws -> Int64 {
        try await request(.get, "/auth/me", token: token).decode(UserIdentity.self).id
    }
}

@Suite("Submissions and grading", .throwawayPostgres)
struct SubmissionsTests {
    @Test(arguments: TestEngine.all) func studentsSubmitOnlyForThemselvesToTheirClassesAndBadNotebooksAreRefused(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let scene = try await SubmissionScene.make(client)
            let assignment = scene.assignmentID
            let notebook = Notebook.json("print(1)")

            let outside = try await client.submit(notebook, to: assignment, token: scene.outsider)
            #expect(outside.status == .notFound)
            #expect(outside.error?.field == "assignmentId")
            #expect(try await client.submit(notebook, to: 999_999, token: scene.alice).status == .notFound)
            #expect(try await client.submit(notebook, to: assignment, token: scene.owner).status == .forbidden)
            #expect(try await client.submit(notebook, to: assignment, token: scene.admin).status == .forbidden)
            let bobID = try await client.userID(scene.bob)
            #expect(try await client.submit(notebook, to: assignment, token: scene.alice, query: "&studentId=\(bobID)").status == .forbidden)
            #expect(try await client.submit(notebook, to: nil, token: scene.alice).error?.field == "assignmentId")
            #expect(try await client.submit(notebook, to: nil, token: scene.alice, query: "assignmentId=abc").status == .badRequest)
            #expect(try await client.submit(notebook, to: assignment, token: "not-a-token").status == .unauthorized)

            // Not a notebook: 422 naming what is wrong; nothing stored.
            let text = try await client.submit("hello", to: assignment, token: scene.alice)
            #expect(text.status == .unprocessableContent)
            #expect(text.error?.code == "not_a_notebook")
            #expect(try await client.submit("[]", to: assignment, token: scene.alice).status == .unprocessableContent)
            #expect(try await client.submit(#"{"metadata":{},"cells":[]}"#, to: assignment, token: scene.alice).error?.field == "nbformat")
            #expect(try await client.submit(#"{"nbformat":4,"metadata":{},"cells":{}}"#, to: assignment, token: scene.alice).error?.field == "cells")
            // Larger than 10 MiB: 413.
            let padding = String(repeating: "x", count: SubmissionsController.maxNotebookBytes)
            let huge = try await client.submit(#"{"nbformat":4,"metadata":{},"cells":[],"padding":"\#(padding)"}"#, to: assignment, token: scene.alice)
            #expect(huge.status == .contentTooLarge)
            #expect(try await client.request(.get, "/api/v1/submissions", token: scene.alice).text.contains(#""submissions":[]"#))
            #expect(try await parts.store.select(SQLStatement("SELECT COUNT(*) FROM submission_versions")).first?.first?.int == 0)

            // A notebook just under the limit is taken.
            let big = #"{"nbformat":4,"metadata":{},"cells":[],"padding":"\#(padding.dropLast(100))"}"#
            #expect(try await client.submit(big, to: assignment, token: scene.bob).status == .created)
        }
    }

    @Test(arguments: TestEngine.all) func versionsAreKeptDownloadableAndVisibleOnlyToTheStudentAndTheirInstructor(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let scene = try await SubmissionScene.make(client)
            let first = Notebook.json("print('first')")
            let second = Notebook.json("print('second')")

            let submitted = try await client.submit(first, to: scene.assignmentID, token: scene.alice)
            #expect(submitted.status == .created)
            let v1 = try submitted.decode(SubmissionAnswer.self)
            #expect(v1.version == 1 && !v1.late && v1.studentEmail == "alice@example.com" && v1.grade == nil)
            let v2 = try await client.submit(second, to: scene.assignmentID, token: scene.alice).decode(SubmissionAnswer.self)
            #expect(v2.id == v1.id && v2.version == 2 && v2.versions.map(\.version) == [1, 2])
            #expect(v2.versions.map(\.size) == [first.utf8.count, second.utf8.count])

            // Downloads: the exact bytes, any version, for the student, the instructor and admins.
            let uri = "/api/v1/submissions/\(v1.id)"
            for token in [scene.alice, scene.owner, scene.admin] {
                let latest = try await client.request(.get, "\(uri)/notebook", token: token)
                #expect(latest.status == .ok && latest.text == second)
                #expect(latest.headers[.contentDisposition]?.contains("submission-\(v1.id)-v2.ipynb") == true)
                #expect(try await client.request(.get, "\(uri)/notebook?version=1", token: token).text == first)
            }
            #expect(try await client.request(.get, "\(uri)/notebook?version=9", token: scene.alice).error?.field == "version")
            #expect(try await client.request(.get, "\(uri)/notebook", token: scene.bob).status == .notFound)
            #expect(try await client.request(.get, "\(uri)/notebook", token: scene.stranger).status == .forbidden)
            #expect(try await client.request(.get, uri, token: scene.bob).status == .notFound)
            #expect(try await client.request(.get, uri, token: scene.outsider).status == .notFound)
            #expect(try await client.request(.get, uri, token: scene.stranger).status == .forbidden)
            #expect(try await client.request(.get, "/api/v1/submissions/999999", token: scene.owner).status == .notFound)

            // Where the bytes are: files in the data folder with SQLite, the database with PostgreSQL.
            let stored = try await parts.store.select(SQLStatement("SELECT content FROM submission_versions ORDER BY version"))
            #expect(stored.count == 2)
            #expect(stored.allSatisfy { ($0[0].data != nil) == (engine == .postgres) })
            #expect(try Self.notebookFiles(parts) == (engine == .sqlite ? 2 : 0))

            // Lists: each role its own.
            let bobs = try await client.submit(first, to: scene.assignmentID, token: scene.bob).decode(SubmissionAnswer.self)
            func list(_ query: String, _ token: String) async throws -> [String] {
                try await client.request(.get, "/api/v1/submissions\(query)", token: token).decode(SubmissionListAnswer.self).submissions.map(\.studentEmail)
                    .sorted()
            }
            #expect(try await list("", scene.alice) == ["alice@example.com"])
            #expect(try await list("?studentId=\(bobs.studentId)", scene.alice) == [])
            #expect(try await list("?assignmentId=\(scene.assignmentID)", scene.owner) == ["alice@example.com", "bob@example.com"])
            #expect(try await list("?studentId=\(bobs.studentId)", scene.owner) == ["bob@example.com"])
            #expect(try await list("", scene.stranger) == [])
            #expect(try await list("?assignmentId=\(scene.assignmentID)", scene.stranger) == [])
            #expect(try await list("", scene.admin) == ["alice@example.com", "bob@example.com"])
            #expect(try await client.request(.get, "/api/v1/submissions?assignmentId=x", token: scene.owner).status == .badRequest)

            // Deleting: not by the student; by the instructor, with the files.
            #expect(try await client.request(.delete, uri, token: scene.alice).status == .forbidden)
            #expect(try await client.request(.delete, uri, token: scene.stranger).status == .forbidden)
            #expect(try await client.request(.delete, uri, token: scene.owner).status == .noContent)
            #expect(try await client.request(.get, uri, token: scene.owner).status == .notFound)
            #expect(try await parts.store.select(SQLStatement("SELECT COUNT(*) FROM submission_versions")).first?.first?.int == 1)
            #expect(try Self.notebookFiles(parts) == (engine == .sqlite ? 1 : 0))
        }
    }

    /// The notebook files in the app's data folder.
    static func notebookFiles(_ parts: TestApp.Parts) throws -> Int {
        let directory = parts.config.dataDirectory + "/submissions"
        guard FileManager.default.fileExists(atPath: directory) else { return 0 }
        return try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".ipynb") }.count
    }

    @Test(arguments: TestEngine.all) func instructorsGradeStudentsCannotAndLateIsFromTheDueDate(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let scene = try await SubmissionScene.make(client)
            let submission = try await client.submit(Notebook.json("x = 1"), to: scene.assignmentID, token: scene.alice).decode(SubmissionAnswer.self)
            let uri = "/api/v1/submissions/\(submission.id)"

            #expect(try await client.request(.patch, uri, token: scene.alice, json: #"{"grade":100}"#).status == .forbidden)
            #expect(try await client.request(.put, uri, token: scene.alice, json: #"{"grade":100}"#).status == .forbidden)
            #expect(try await client.request(.patch, uri, token: scene.bob, json: #"{"grade":100}"#).status == .notFound)
            #expect(try await client.request(.patch, uri, token: scene.stranger, json: #"{"grade":100}"#).status == .forbidden)
            let readOnly = try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":80,"late":false}"#)
            #expect(readOnly.status == .unprocessableContent && readOnly.error?.field == "late")
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"studentId":1}"#).error?.field == "studentId")
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":"A"}"#).status == .badRequest)
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":true}"#).status == .badRequest)
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":101}"#).error?.field == "grade")
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"feedback":5}"#).status == .badRequest)
            #expect(try await client.request(.patch, uri, token: scene.owner, json: "{").status == .badRequest)

            let graded = try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":85.5,"feedback":"Good loops."}"#)
            #expect(graded.status == .ok)
            let answer = try graded.decode(SubmissionAnswer.self)
            #expect(answer.grade == 85.5 && answer.feedback == "Good loops." && answer.gradedVersion == 1)
            // PATCH keeps what it does not name; PUT replaces both; null clears.
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":90}"#).decode(SubmissionAnswer.self).feedback == "Good loops.")
            let replaced = try await client.request(.put, uri, token: scene.admin, json: #"{"grade":70}"#).decode(SubmissionAnswer.self)
            #expect(replaced.grade == 70 && replaced.feedback == nil)
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":null}"#).decode(SubmissionAnswer.self).grade == nil)
            #expect(try await client.request(.patch, uri, token: scene.owner, json: #"{"grade":88}"#).status == .ok)
            // The student reads their grade.
            #expect(try await client.request(.get, uri, token: scene.alice).decode(SubmissionAnswer.self).grade == 88)

            // Due at the moment the assignment was created: every submission from now on is late.
            let due = try await client.request(
                .patch, "/api/v1/assignments/\(scene.assignmentID)", token: scene.owner, json: #"{"dueAt":"\#(scene.assignmentCreatedAt)"}"#)
            #expect(due.status == .ok)
            let late = try await client.submit(Notebook.json("y = 2"), to: scene.assignmentID, token: scene.bob).decode(SubmissionAnswer.self)
            #expect(late.late)
            let again = try await client.submit(Notebook.json("x = 2"), to: scene.assignmentID, token: scene.alice).decode(SubmissionAnswer.self)
            #expect(again.late && again.versions.map(\.late) == [false, true])
            // A new version after grading keeps the grade and says which version it was for.
            #expect(again.grade == 88 && again.gradedVersion == 1 && again.version == 2)
        }
    }

    @Test(arguments: TestEngine.all) func submissionsAndGradesAreAuditedInTheirRequest(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let scene = try await SubmissionScene.make(client)
            let submitted = try await client.submit(Notebook.json("z = 3"), to: scene.assignmentID, token: scene.alice)
            let id = try submitted.decode(SubmissionAnswer.self).id
            let graded = try await client.request(.patch, "/api/v1/submissions/\(id)", token: scene.owner, json: #"{"grade":75}"#)
            let deleted = try await client.request(.delete, "/api/v1/submissions/\(id)", token: scene.owner)
            struct Page: Decodable {
                struct Entry: Decodable {
                    var action: String
                    var entityId: String
                    var actorEmail: String
                    var requestId: String
                    var details: String
                }

                var entries: [Entry]
            }
            let entries = try await client.request(.get, "/api/v1/audit?entity=submission", token: scene.admin).decode(Page.self).entries
            #expect(entries.map(\.action) == ["delete", "grade", "submit"])
            #expect(entries.allSatisfy { $0.entityId == String(id) })
            #expect(entries.map(\.requestId) == [deleted, graded, submitted].map { $0.headers[HTTPField.Name("X-Request-Id")!] ?? "?" })
            #expect(entries[2].actorEmail == "alice@example.com" && entries[1].details == "grade 75.0")
            #expect(try await client.request(.get, "/api/v1/audit?entity=submission", token: scene.owner).status == .forbidden)
        }
    }
}

@Suite("Submissions: grades arrive live", .throwawayPostgres, .timeLimit(.minutes(2)))
struct GradeNotificationTests {
    @Test(arguments: TestEngine.all) func aGradeReachesTheStudentsNotificationsAndNoOneElses(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let scene = try await SubmissionScene.make(client)
            let aliceID = try await client.userID(scene.alice)
            let submission = try await client.submit(Notebook.json("print(2)"), to: scene.assignmentID, token: scene.alice).decode(SubmissionAnswer.self)
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(scene.bob, on: outbound)
                #expect(try await reader.subscribe("notifications:\(aliceID)", on: outbound).code == "forbidden")
                try await outbound.close(.normalClosure, reason: nil)
            }
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(scene.alice, on: outbound)
                #expect(try await reader.subscribe("notifications:\(aliceID)", on: outbound).type == "subscribed")
                let graded = try await client.request(.patch, "/api/v1/submissions/\(submission.id)", token: scene.owner, json: #"{"grade":92}"#)
                #expect(graded.status == .ok)
                let message = try await reader.next()
                let data = try #require(message.fields["data"] as? [String: Any])
                #expect(message.channel == "notifications:\(aliceID)")
                #expect(data["kind"] as? String == "assignment_graded")
                #expect(data["grade"] as? Double == 92)
                #expect(data["assignmentId"] as? Int == Int(scene.assignmentID) && data["title"] as? String == "Loops")
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }
}
