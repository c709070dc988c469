import Foundation
import HummingbirdTesting
import Testing

@testable import PulseboardAccounts

@Suite("User and ingest token management", .throwawayPostgres)
struct UsersAndTokensTests {
    @Test(arguments: TestEngine.all) func adminCreatesChangesAndDeletesUsers(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let created = try await client.request(
                .post, "/api/v1/users", token: admin, json: #"{"email":"Teacher@Example.com","password":"password-123","role":"instructor"}"#)
            #expect(created.status == .created)
            #expect(created.text.contains(#""email":"teacher@example.com""#))
            let id = try created.decode(UserID.self).id

            let duplicate = try await client.request(
                .post, "/api/v1/users", token: admin, json: #"{"email":"teacher@example.com","password":"password-123","role":"student"}"#)
            #expect(duplicate.status == .conflict)

            let badEmail = try await client.request(.post, "/api/v1/users", token: admin, json: #"{"email":"nope","password":"password-123","role":"student"}"#)
            #expect(badEmail.status == .unprocessableContent)
            #expect(badEmail.error?.field == "email")
            let shortPassword = try await client.request(
                .post, "/api/v1/users", token: admin, json: #"{"email":"s@example.com","password":"short","role":"student"}"#)
            #expect(shortPassword.status == .unprocessableContent)
            let badRole = try await client.request(
                .post, "/api/v1/users", token: admin, json: #"{"email":"s@example.com","password":"password-123","role":"king"}"#)
            #expect(badRole.status == .badRequest)

            let patched = try await client.request(.patch, "/api/v1/users/\(id)", token: admin, json: #"{"role":"student"}"#)
            #expect(patched.status == .ok)
            #expect(patched.text.contains(#""role":"student""#))
            #expect(try await client.request(.patch, "/api/v1/users/9999", token: admin, json: #"{"role":"student"}"#).status == .notFound)

            #expect(try await client.request(.delete, "/api/v1/users/\(id)", token: admin).status == .noContent)
            #expect(try await client.request(.delete, "/api/v1/users/\(id)", token: admin).status == .notFound)
            #expect(try await client.request(.delete, "/api/v1/users/abc", token: admin).status == .notFound)
        }
    }

    @Test(arguments: TestEngine.all) func adminCannotDeleteOrDemoteThemselves(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            #expect(try await client.request(.delete, "/api/v1/users/1", token: admin).status == .conflict)
            #expect(try await client.request(.patch, "/api/v1/users/1", token: admin, json: #"{"role":"student"}"#).status == .conflict)
        }
    }

    @Test(arguments: TestEngine.all) func ingestTokensIngestUntilRevokedAndAreShownOnce(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let created = try await client.request(.post, "/api/v1/tokens", token: admin, json: #"{"name":"sensor-gateway"}"#)
            #expect(created.status == .created)
            let token = try created.decode(CreatedToken.self)
            #expect(token.token.hasPrefix("pbi_"))

            let listed = try await client.request(.get, "/api/v1/tokens", token: admin)
            #expect(listed.text.contains("sensor-gateway"))
            #expect(!listed.text.contains(token.token))

            #expect(try await client.ingest(#"[{"name":"t","value":1}]"#, token: token.token).status == .ok)
            // An ingest token is for ingest only.
            #expect(try await client.request(.get, "/api/v1/series", token: token.token).status == .forbidden)

            #expect(try await client.request(.delete, "/api/v1/tokens/\(token.id)", token: admin).status == .noContent)
            #expect(try await client.ingest(#"[{"name":"t","value":1}]"#, token: token.token).status == .unauthorized)
            #expect(try await client.request(.delete, "/api/v1/tokens/\(token.id)", token: admin).status == .notFound)
            #expect(try await client.request(.post, "/api/v1/tokens", token: admin, json: #"{"name":""}"#).status == .unprocessableContent)
        }
    }

    private struct UserID: Decodable { var id: Int64 }
}
