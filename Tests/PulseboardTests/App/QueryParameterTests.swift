import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardApp

/// A filter the API does not know is refused, not ignored (an ignored `class_id` answered every
/// class's assignments).
@Suite("Unknown query parameters", .throwawayPostgres)
struct QueryParameterTests {
    @Test(arguments: TestEngine.all) func anUnknownParameterIsNamedAndASnakeCaseOneCorrected(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let course = try await client.createClass("query", token: admin)
            for (uri, parameter, hint) in [
                ("/api/v1/assignments?class_id=\(course.id)", "class_id", "Did you mean 'classId'?"),
                ("/api/v1/submissions?assignmentId=1&student_id=2", "student_id", "Did you mean 'studentId'?"),
                ("/api/v1/classes?skip=0&page=2", "page", "It takes: limit, skip."),
                ("/api/v1/classes/\(course.id)?verbose=1", "verbose", "This operation takes none."),
                ("/api/v1/metrics?name=host.cpu&type=cpu", "type", "It takes:"),
            ] {
                let response = try await client.request(.get, uri, token: admin)
                #expect(response.status == .badRequest, "\(uri)")
                #expect(response.error?.code == "unknown_parameter", "\(uri)")
                #expect(response.error?.field == parameter, "\(uri)")
                #expect(response.error?.message.contains(hint) == true, "\(uri): \(response.text)")
            }
            // What the document names is taken; paths outside the API and the agents' endpoints are left alone.
            #expect(try await client.request(.get, "/api/v1/assignments?classId=\(course.id)", token: admin).status == .ok)
            #expect(try await client.request(.get, "/api/v1/classes?skip=0&limit=5", token: admin).status == .ok)
            #expect(try await client.request(.get, "/health?probe=1").status == .ok)
            let ingest = try await client.ingestToken(adminToken: admin).token
            let write = try await client.executeRequest(
                uri: "/write?db=telegraf&rp=autogen&consistency=any&precision=s", method: .post, headers: [.authorization: "Token \(ingest)"],
                body: ByteBuffer(string: "cpu value=1 1700000000"))
            #expect(write.status == .noContent)
            // The class token is the one parameter of the extension's serverUrl.
            #expect(try await client.sendEvents([ExtensionEvent.json("help")], classToken: course.ingestToken).status == .ok)
        }
    }

    @Test func theMostLiteralPathWins() throws {
        let check = QueryParameterCheck(document: [
            "paths": [
                "/api/v1/classes/{id}": ["get": ["parameters": [["name": "a", "in": "query"]]]],
                "/api/v1/classes/mine": ["get": ["parameters": [["name": "b", "in": "query"]]]],
            ]
        ])
        #expect(check.operation(method: "GET", path: "/api/v1/classes/mine")?.parameters == ["b"])
        #expect(check.operation(method: "GET", path: "/api/v1/classes/7")?.parameters == ["a"])
        #expect(check.operation(method: "POST", path: "/api/v1/classes/7") == nil)
        #expect(check.operation(method: "GET", path: "/api/v1/classes/7/more") == nil)
    }
}
