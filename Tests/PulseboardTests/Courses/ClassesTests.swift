import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardClassroom
@testable import PulseboardCourses
@testable import PulseboardDatabase
@testable import PulseboardKernel
@testable import PulseboardLive

@Suite("Classes and their rosters", .throwawayPostgres)
struct ClassesTests {
    struct Roster: Decodable {
        struct Member: Decodable {
            var email: String
            var name: String?
            var team: String?
            var lastActivity: String?
        }

        var students: [Member]
    }

    struct Report: Decodable {
        struct Rejection: Decodable {
            var line: Int
            var email: String?
            var reason: String
        }

        var enrolled: Int
        var alreadyEnrolled: Int
        var rejected: [Rejection]
    }

    struct Connection: Decodable {
        var ingestToken: String
        var serverUrl: String
    }

    @Test(arguments: TestEngine.all) func theStudentsServerUrlIsAbsoluteAndShownAgainToTheClassesInstructors(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let colleague = try await client.tokenForNewUser(role: .instructor, adminToken: admin, email: "co@example.com")
            let course = try await client.createClass("url", token: owner)
            let token = try #require(course.ingestToken)
            // On the address the request was sent to (the test framework's is localhost).
            #expect(course.serverUrl == "http://localhost/api/v1/events?token=\(token)")
            let uri = "/api/v1/classes/\(course.id)/token"
            #expect(try await client.request(.get, uri, token: colleague).status == .forbidden)
            #expect(
                try await client.request(.post, "/api/v1/classes/\(course.id)/instructors", token: owner, json: #"{"email":"co@example.com"}"#).status
                    == .created)
            for reader in [owner, colleague, admin] {
                let shown = try await client.request(.get, uri, token: reader).decode(Connection.self)
                #expect(shown.ingestToken == token && shown.serverUrl == course.serverUrl)
            }
            // The URL shown works as the extension uses it.
            let path = try #require(course.serverUrl?.replacingOccurrences(of: "http://localhost", with: ""))
            let sent = try await client.executeRequest(
                uri: path, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "[\(ExtensionEvent.json("help"))]"))
            #expect(sent.status == .ok)
            // After a rotation the new token is shown; a class from before tokens were kept says how to see one.
            let rotated = try await client.request(.post, uri, token: owner).decode(CreatedClass.self)
            #expect(try await client.request(.get, uri, token: owner).decode(Connection.self).ingestToken == rotated.ingestToken)
            try await parts.store.transaction([SQLStatement("UPDATE classes SET ingest_token = NULL WHERE id = ?", .integer(course.id))])
            let old = try await client.request(.get, uri, token: owner)
            #expect(old.status == .notFound && old.text.contains("replace it once"))
        }
        // With --public-url (and behind TLS without it), the address students use.
        try await TestApp.run(engine: engine, configure: { $0.publicURL = "https://pulse.example.edu/course" }) { client, _ in
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: try await client.login().accessToken)
            let course = try await client.createClass("public", token: owner)
            #expect(course.serverUrl == "https://pulse.example.edu/course/api/v1/events?token=\(course.ingestToken ?? "")")
        }
        try await TestApp.run(engine: engine, configure: { $0.behindTLS = true }) { client, _ in
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: try await client.login().accessToken)
            #expect(try await client.createClass("tls", token: owner).serverUrl?.hasPrefix("https://localhost/api/v1/events?token=pbc_") == true)
        }
    }

    @Test func aPublicURLIsCheckedWhenGiven() throws {
        #expect(try ServerURL.validatedBase("https://pulse.example.edu/") == "https://pulse.example.edu")
        #expect(try ServerURL.validatedBase("http://10.0.0.5:8080") == "http://10.0.0.5:8080")
        for bad in ["pulse.example.edu", "ftp://pulse.example.edu", "https://pulse.example.edu/?a=1", "https://", ""] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try ServerURL.validatedBase(bad) }
        }
    }

    @Test(arguments: TestEngine.all) func classesAreCreatedPagedChangedAndDeleted(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let colleagueEmail = "colleague@example.com"
            let colleague = try await client.tokenForNewUser(role: .instructor, adminToken: admin, email: colleagueEmail)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            for code in ["c1", "c2", "c3"] { _ = try await client.createClass(code, token: owner) }
            let page = try await client.request(.get, "/api/v1/classes?skip=1&limit=1", token: owner)
            #expect(page.text.contains(#""total":3"#) && page.text.contains(#""code":"c2""#) && !page.text.contains(#""code":"c1""#))
            #expect(try await client.request(.get, "/api/v1/classes?limit=0", token: owner).status == .badRequest)
            let course = try await client.createClass("c4", token: owner)
            let uri = "/api/v1/classes/\(course.id)"

            let patched = try await client.request(.patch, uri, token: owner, json: #"{"name":"Renamed","description":"Week 1 to 10"}"#)
            #expect(patched.status == .ok)
            #expect(patched.text.contains(#""name":"Renamed""#) && patched.text.contains(#""code":"c4""#))
            #expect(try await client.request(.put, uri, token: owner, json: #"{"name":"Only a name"}"#).status == .badRequest)
            let put = try await client.request(.put, uri, token: owner, json: #"{"name":"Put","code":"c4b"}"#)
            #expect(put.status == .ok && put.text.contains(#""description":"""#))
            func changesAudited() async throws -> Int {
                try await client.request(.get, "/api/v1/audit?entity=class", token: admin).text.components(separatedBy: #""action":"change""#).count - 1
            }
            let audited = try await changesAudited()
            #expect(try await client.request(.patch, uri, token: owner, json: #"{"code":"c1"}"#).status == .conflict)
            #expect(try await changesAudited() == audited, "a change that failed leaves no audit row")
            #expect(try await client.request(.patch, uri, token: owner, json: #"{"code":"bad code"}"#).status == .unprocessableContent)
            #expect(try await client.request(.patch, uri, token: owner, json: #"{"name":5}"#).status == .badRequest)
            // Only admins give a class away, and only to an instructor or admin.
            #expect(try await client.request(.patch, uri, token: owner, json: #"{"ownerId":1}"#).status == .forbidden)
            let users = try await client.request(.get, "/api/v1/users", token: admin).decode([String: [UserSummary]].self)["users"] ?? []
            let colleagueID = try #require(users.first { $0.email == colleagueEmail }?.id)
            let studentID = try #require(users.first { $0.role == "student" }?.id)
            #expect(try await client.request(.patch, uri, token: admin, json: #"{"ownerId":\#(studentID)}"#).status == .unprocessableContent)
            #expect(try await client.request(.patch, uri, token: admin, json: #"{"ownerId":\#(colleagueID)}"#).status == .ok)
            #expect(try await client.request(.get, uri, token: owner).status == .forbidden)
            #expect(try await client.request(.get, uri, token: colleague).status == .ok)
            for method in [HTTPRequest.Method.put, .patch, .delete] {
                #expect(try await client.request(method, uri, token: owner, json: #"{"name":"x","code":"y"}"#).status == .forbidden)
                #expect(try await client.request(method, uri, token: student, json: #"{"name":"x","code":"y"}"#).status == .forbidden)
            }
            #expect(try await client.request(.delete, uri, token: colleague).status == .noContent)
            #expect(try await client.request(.get, uri, token: colleague).status == .notFound)
            #expect(try await client.request(.delete, uri, token: colleague).status == .notFound)
        }
    }

    @Test(arguments: TestEngine.all) func coInstructorsRunTheClassButOnlyTheOwnerChoosesThemOrDeletesIt(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let scene = try await SubmissionScene.make(client)
            let colleague = try await client.tokenForNewUser(role: .instructor, adminToken: scene.admin, email: "co@example.com")
            let uri = "/api/v1/classes/\(scene.classID)/instructors"
            func add(_ email: String, as token: String) async throws -> TestResponse {
                try await client.request(.post, uri, token: token, json: #"{"email":"\#(email)"}"#)
            }
            // Before: the colleague is a stranger to the class.
            #expect(try await client.request(.get, "/api/v1/classes/\(scene.classID)", token: colleague).status == .forbidden)
            #expect(try await add("co@example.com", as: colleague).status == .forbidden)
            #expect(try await add("co@example.com", as: scene.stranger).status == .forbidden)
            #expect(try await add("alice@example.com", as: scene.owner).error?.field == "email")
            #expect(try await add("nobody@example.com", as: scene.owner).status == .notFound)
            #expect(try await add("not-an-email", as: scene.owner).status == .unprocessableContent)
            #expect(try await add("co@example.com", as: scene.owner).status == .created)
            #expect(try await add("co@example.com", as: scene.owner).status == .ok)
            struct Instructors: Decodable {
                struct Instructor: Decodable {
                    var id: Int64
                    var email: String
                    var owner: Bool
                }

                var instructors: [Instructor]
            }
            let team = try await client.request(.get, uri, token: colleague).decode(Instructors.self).instructors
            #expect(team.map(\.owner) == [true, false] && team[1].email == "co@example.com")

            // Now they run the class: list, page, roster, assignments, grading, the live channel.
            #expect(try await client.request(.get, "/api/v1/classes", token: colleague).text.contains(#""id":\#(scene.classID)"#))
            #expect(try await client.request(.get, "/classes/\(scene.classID)", token: colleague).status == .ok)
            #expect(try await client.request(.get, "/api/v1/classes/\(scene.classID)/students", token: colleague).status == .ok)
            let assignment = #"{"classId":\#(scene.classID),"title":"Second","notebookPath":"hw/2.ipynb"}"#
            #expect(try await client.request(.post, "/api/v1/assignments", token: colleague, json: assignment).status == .created)
            let submission = try await client.submit(Notebook.json("1"), to: scene.assignmentID, token: scene.alice).decode(SubmissionAnswer.self)
            #expect(try await client.request(.patch, "/api/v1/submissions/\(submission.id)", token: colleague, json: #"{"grade":50}"#).status == .ok)
            let colleagueClaims = UserClaims(id: team[1].id, email: "co@example.com", role: .instructor)
            let policy = ChannelPolicy(LearningChannels.rules(classes: Classes(store: parts.store)))
            #expect(try await policy.refusal(for: "class:\(scene.classID)", user: colleagueClaims) == nil)
            #expect(try await policy.refusal(for: "progress:\(scene.classID):alice@example.com", user: colleagueClaims) == nil)
            #expect(try await policy.refusal(for: "progress:alice@example.com", user: colleagueClaims) != nil)

            // A student's classes: admins see all, instructors those they teach, a student their own.
            struct StudentClasses: Decodable {
                struct Item: Decodable { var id: Int64 }
                var classes: [Item]
            }
            let other = try await client.createClass("elsewhere", token: scene.stranger)
            #expect(
                try await client.request(.post, "/api/v1/classes/\(other.id)/students", token: scene.stranger, json: #"{"email":"alice@example.com"}"#).status
                    == .created)
            func classesOfAlice(_ token: String) async throws -> [Int64] {
                try await client.request(.get, "/api/v1/students/alice%40example.com/classes", token: token).decode(StudentClasses.self).classes.map(\.id)
                    .sorted()
            }
            #expect(try await classesOfAlice(scene.admin) == [scene.classID, other.id].sorted())
            #expect(try await classesOfAlice(colleague) == [scene.classID])
            #expect(try await classesOfAlice(scene.stranger) == [other.id])
            #expect(try await classesOfAlice(scene.alice) == [scene.classID, other.id].sorted())
            #expect(try await client.request(.get, "/api/v1/students/alice@example.com/classes", token: scene.bob).status == .notFound)

            // But only the owner (or an admin) deletes the class or changes who teaches it.
            #expect(try await client.request(.delete, "/api/v1/classes/\(scene.classID)", token: colleague).status == .forbidden)
            #expect(try await client.request(.delete, "\(uri)/\(team[1].id)", token: colleague).status == .forbidden)
            #expect(try await client.request(.delete, "\(uri)/\(team[1].id)", token: scene.owner).status == .noContent)
            #expect(try await client.request(.delete, "\(uri)/\(team[1].id)", token: scene.owner).status == .notFound)
            // Only what changed something is in the audit trail: one addition (the second was a no-op), one removal.
            let trail = try await client.request(.get, "/api/v1/audit?entity=class", token: scene.admin).text
            #expect(trail.components(separatedBy: #""action":"add-instructor""#).count == 2)
            #expect(trail.components(separatedBy: #""action":"remove-instructor""#).count == 2)
            #expect(try await client.request(.get, "/api/v1/classes/\(scene.classID)", token: colleague).status == .forbidden)
            #expect(try await policy.refusal(for: "class:\(scene.classID)", user: colleagueClaims) != nil)
            #expect(try await client.request(.get, "/api/v1/submissions", token: colleague).text.contains(#""submissions":[]"#))
        }
    }

    /// A class token is shared by the whole class, so an event's email is a claim: a class may
    /// hold those who join by sending events until an instructor accepts them.
    @Test(arguments: TestEngine.all) func aClassCanHoldStudentsWhoJoinBySendingEvents(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            struct Member: Decodable {
                var email: String
                var joinedByEvents: Bool
                var held: Bool
            }
            struct Roster: Decodable { var students: [Member] }
            struct Course: Decodable { var holdNewStudents: Bool }
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let victim = try await client.tokenForNewUser(role: .student, adminToken: admin, email: "victim@example.com")
            let course = try await client.createClass("held", token: owner)
            let token = try #require(course.ingestToken)
            let created = try await client.request(
                .post, "/api/v1/assignments", token: owner, json: #"{"classId":\#(course.id),"title":"Loops","notebookPath":"hw/loops.ipynb"}"#)
            let assignmentID = try #require(try created.decode([String: AnyCodable].self)["id"]?.number.map { Int64($0) })
            let roster = { @Sendable () async throws -> [Member] in
                try await client.request(.get, "/api/v1/classes/\(course.id)/students", token: owner).decode(Roster.self).students
            }
            let seesAssignment = { @Sendable () async throws -> Bool in
                try await client.request(.get, "/api/v1/assignments", token: victim).text.contains(#""id":\#(assignmentID),"#)
            }

            // By default a new email joins by sending events, marked as such.
            #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", email: "open@example.com", cell: 0)], classToken: token).status == .ok)
            try await waitUntil { try await roster().contains { $0.email == "open@example.com" } }
            let open = try #require(try await roster().first { $0.email == "open@example.com" })
            #expect(open.joinedByEvents && !open.held)

            // Held: the claimed student is in the roster, waiting, and does not see the class.
            let changed = try await client.request(.patch, "/api/v1/classes/\(course.id)", token: owner, json: #"{"holdNewStudents":true}"#)
            #expect(try changed.decode(Course.self).holdNewStudents)
            #expect(try await client.sendEvents([ExtensionEvent.json("cell_executed", email: "victim@example.com", cell: 0)], classToken: token).status == .ok)
            try await waitUntil { try await roster().contains { $0.email == "victim@example.com" } }
            let waiting = try #require(try await roster().first { $0.email == "victim@example.com" })
            #expect(waiting.joinedByEvents && waiting.held)
            #expect(try await seesAssignment() == false)
            #expect(try await client.submit(Notebook.json("1"), to: assignmentID, token: victim).status == .notFound)

            // Accepting is one action; then the student sees the class. Refusing is removing.
            let accept = "/api/v1/classes/\(course.id)/students/victim%40example.com/accept"
            #expect(try await client.request(.post, accept, token: victim).status == .forbidden)
            #expect(try await client.request(.post, accept, token: owner).status == .ok)
            #expect(try await client.request(.post, accept, token: owner).status == .notFound)
            #expect(try await seesAssignment())
            #expect(try await roster().first { $0.email == "victim@example.com" }?.held == false)
            // An instructor's own enrolment is not "joined by events".
            #expect(
                try await client.request(.post, "/api/v1/classes/\(course.id)/students", token: owner, json: #"{"email":"listed@example.com"}"#).status
                    == .created)
            #expect(try await roster().first { $0.email == "listed@example.com" }?.joinedByEvents == false)
        }
    }

    @Test(arguments: TestEngine.all) func studentsAreEnrolledOneByOneOrFromACSVAndMeetTheirEvents(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let stranger = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let course = try await client.createClass("roster", token: owner)
            let students = "/api/v1/classes/\(course.id)/students"

            let added = try await client.request(.post, students, token: owner, json: #"{"email":"Ann@Example.com","name":"Ann","team":"red"}"#)
            #expect(added.status == .created)
            #expect(try await client.request(.post, students, token: owner, json: #"{"email":"ann@example.com"}"#).status == .ok)
            #expect(try await client.request(.post, students, token: owner, json: #"{"email":"not an email"}"#).status == .unprocessableContent)
            #expect(try await client.request(.post, students, token: owner, json: #"{"name":"no email"}"#).status == .badRequest)
            #expect(try await client.request(.post, students, token: stranger, json: #"{"email":"x@example.com"}"#).status == .forbidden)

            let csv = """
                email,name,team
                bob@example.com,Bob,blue
                "cid@example.com","Cid, Jr.",blue
                not-an-email,Nobody,red
                ,Missing,red
                bob@example.com,Bob again,blue
                ann@example.com,Ann,red

                """
            let report = try await client.executeRequest(
                uri: students + "/csv", method: .post, headers: [.authorization: "Bearer \(owner)", .contentType: "text/csv"],
                body: ByteBuffer(string: csv)
            ).decode(Report.self)
            #expect(report.enrolled == 2)
            #expect(report.alreadyEnrolled == 1)
            #expect(report.rejected.map(\.line) == [4, 5, 6])
            #expect(report.rejected.map(\.reason) == ["not an email address", "no email", "listed twice; the first row counts"])
            let noHeader = try await client.executeRequest(
                uri: students + "/csv", method: .post, headers: [.authorization: "Bearer \(owner)", .contentType: "text/csv"],
                body: ByteBuffer(string: "a,b\n1,2\n"))
            #expect(noHeader.status == .unprocessableContent)

            // Events from an enrolled email land on the same student.
            #expect(
                try await client.sendEvents(
                    [ExtensionEvent.json("cell_executed", email: "bob@example.com", name: "Robert", cell: 1)], classToken: course.ingestToken
                ).status == .ok)
            try await waitUntil {
                let roster = try await client.request(.get, students, token: owner).decode(Roster.self)
                return roster.students.first { $0.email == "bob@example.com" }?.lastActivity != nil
            }
            let roster = try await client.request(.get, students, token: owner).decode(Roster.self)
            #expect(roster.students.map(\.email) == ["ann@example.com", "bob@example.com", "cid@example.com"])
            #expect(roster.students.map(\.name) == ["Ann", "Robert", "Cid, Jr."])
            #expect(roster.students.map(\.team) == ["red", "team-a", "blue"])

            #expect(try await client.request(.delete, students + "/cid%40example.com", token: owner).status == .noContent)
            #expect(try await client.request(.delete, students + "/cid@example.com", token: owner).status == .notFound)
            #expect(try await client.request(.get, students, token: owner).decode(Roster.self).students.count == 2)

            // Each change is in the audit trail, with the request that made it; only admins read it.
            let removal = try await client.request(.delete, students + "/ann%40example.com", token: owner)
            let requestID = try #require(removal.headers[HTTPField.Name("X-Request-Id")!])
            struct Audit: Decodable {
                struct Entry: Decodable {
                    var action: String
                    var entity: String
                    var entityId: String
                    var requestId: String
                }

                var entries: [Entry]
            }
            let audit = try await client.request(.get, "/api/v1/audit?entity=enrolment", token: admin).decode(Audit.self)
            // Newest first; enrolling someone already enrolled (a new name or team) is an "enrol" too;
            // removing someone who is not enrolled (404) changed nothing and is not recorded.
            #expect(audit.entries.map(\.action) == ["unenrol", "unenrol", "upload", "enrol", "enrol"])
            #expect(audit.entries.first?.entityId == "\(course.id)/ann@example.com")
            #expect(audit.entries.first?.requestId == requestID)
            #expect(try await client.request(.get, "/api/v1/audit?entity=class", token: admin).text.contains(#""action":"create""#))
            #expect(try await client.request(.get, "/api/v1/audit", token: owner).status == .forbidden)
        }
    }
}

struct UserSummary: Decodable {
    var id: Int64
    var email: String
    var role: String
}
