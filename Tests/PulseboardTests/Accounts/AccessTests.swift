import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import NIOCore
import Testing

@testable import PulseboardAccounts
@testable import PulseboardApp
@testable import PulseboardCourses
@testable import PulseboardHTTP
@testable import PulseboardKernel

/// Access follows the database: what is taken away stops working on the next request.
@Suite("Revocation and limits", .throwawayPostgres)
struct AccessTests {
    struct CreatedUser: Decodable { var id: Int64 }

    static func createUser(_ client: any TestClientProtocol, role: Role, admin: String) async throws -> (id: Int64, email: String) {
        let email = "\(role.rawValue)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let created = try await client.request(
            .post, "/api/v1/users", token: admin, json: #"{"email":"\#(email)","password":"password-123","role":"\#(role.rawValue)"}"#)
        try #require(created.status == .created)
        return (try created.decode(CreatedUser.self).id, email)
    }

    @Test(arguments: TestEngine.all) func aDemotedAdminsTokenLosesThePrivilegeAtOnce(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let other = try await Self.createUser(client, role: .admin, admin: admin)
            let otherToken = try await client.login(other.email, "password-123").accessToken
            #expect(try await client.request(.get, "/api/v1/users", token: otherToken).status == .ok)
            #expect(try await client.request(.patch, "/api/v1/users/\(other.id)", token: admin, json: #"{"role":"student"}"#).status == .ok)
            let escalation = try await client.request(
                .post, "/api/v1/users", token: otherToken, json: #"{"email":"new-admin@example.com","password":"password-123","role":"admin"}"#)
            #expect(escalation.status == .unauthorized)
            #expect(try await client.request(.get, "/api/v1/users", token: otherToken).status == .unauthorized)
            // Logging in again gives the new role only.
            let again = try await client.login(other.email, "password-123").accessToken
            #expect(try await client.request(.get, "/api/v1/users", token: again).status == .forbidden)
        }
    }

    @Test(arguments: TestEngine.all) func deletionLogoutAndANewPasswordEndTheAccessToken(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let deleted = try await Self.createUser(client, role: .instructor, admin: admin)
            let deletedToken = try await client.login(deleted.email, "password-123").accessToken
            #expect(try await client.request(.get, "/api/v1/series", token: deletedToken).status == .ok)
            #expect(try await client.request(.delete, "/api/v1/users/\(deleted.id)", token: admin).status == .noContent)
            #expect(try await client.request(.get, "/api/v1/series", token: deletedToken).status == .unauthorized)

            let user = try await Self.createUser(client, role: .instructor, admin: admin)
            let session = try await client.login(user.email, "password-123")
            #expect(try await client.request(.post, "/auth/logout", json: #"{"refreshToken":"\#(session.refreshToken)"}"#).status == .noContent)
            #expect(try await client.request(.get, "/auth/me", token: session.accessToken).status == .unauthorized)

            let next = try await client.login(user.email, "password-123")
            let changed = try await client.request(.patch, "/api/v1/users/\(user.id)", token: admin, json: #"{"password":"another-password-2"}"#)
            #expect(changed.status == .ok)
            #expect(try await client.request(.get, "/auth/me", token: next.accessToken).status == .unauthorized)
            #expect(try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(next.refreshToken)"}"#).status == .unauthorized)
            #expect(try await client.request(.get, "/auth/me", token: try await client.login(user.email, "another-password-2").accessToken).status == .ok)
        }
    }

    @Test(arguments: TestEngine.all) func replayingARotatedRefreshTokenEndsItsFamily(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let elsewhere = try await client.login()
            let first = try await client.login()
            let second = try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(first.refreshToken)"}"#).decode(TokenPair.self)
            #expect(try await client.request(.get, "/auth/me", token: second.accessToken).status == .ok)
            // The thief (or the owner) replays the rotated token: refused, and the family ends.
            #expect(try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(first.refreshToken)"}"#).status == .unauthorized)
            #expect(try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(second.refreshToken)"}"#).status == .unauthorized)
            #expect(try await client.request(.get, "/auth/me", token: second.accessToken).status == .unauthorized)
            // Another login of the same user keeps its refresh token and gets a new access token.
            let renewed = try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(elsewhere.refreshToken)"}"#)
            #expect(renewed.status == .ok)
            #expect(try await client.request(.get, "/auth/me", token: try renewed.decode(TokenPair.self).accessToken).status == .ok)
        }
    }

    /// Two instances on one PostgreSQL database: what one takes away, the other refuses as soon
    /// as the NOTIFY arrives, though it had the user in memory (kept for an hour here, so that
    /// only the NOTIFY can make it read again). The command line's changes are announced too.
    @Test func aRevocationOnOneInstanceHoldsOnTheOther() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        let configure: @Sendable (inout ServerConfig) -> Void = {
            $0.databaseURL = url
            $0.userCheckCacheLifetime = .seconds(3600)
        }
        try await TestApp.run(engine: .postgres, configure: configure) { a, partsA in
            try await TestApp.run(engine: .postgres, configure: configure) { b, _ in
                let admin = try await a.login().accessToken
                let user = try await Self.createUser(a, role: .admin, admin: admin)
                let token = try await b.login(user.email, "password-123").accessToken
                #expect(try await b.request(.get, "/api/v1/users", token: token).status == .ok)
                #expect(try await a.request(.patch, "/api/v1/users/\(user.id)", token: admin, json: #"{"role":"student"}"#).status == .ok)
                #expect(try await Self.becomes(.unauthorized, within: .seconds(5)) { try await b.request(.get, "/api/v1/users", token: token).status })

                let student = try await b.login(user.email, "password-123").accessToken
                #expect(try await b.request(.get, "/auth/me", token: student).status == .ok)
                try await UserAdministration.resetPassword(email: user.email, password: "another-password-9", in: partsA.store)
                try await Pulseboard.announceAccessChange(in: partsA.store)
                #expect(try await Self.becomes(.unauthorized, within: .seconds(5)) { try await b.request(.get, "/auth/me", token: student).status })
            }
        }
    }

    /// A change no server announces (the command line on SQLite) holds once the user check's
    /// memory has expired.
    @Test func anUnannouncedChangeHoldsAfterTheUserCheckLifetime() async throws {
        try await TestApp.run(engine: .sqlite, configure: { $0.userCheckCacheLifetime = .seconds(1) }) { client, parts in
            let admin = try await client.login().accessToken
            let user = try await Self.createUser(client, role: .admin, admin: admin)
            let token = try await client.login(user.email, "password-123").accessToken
            #expect(try await client.request(.get, "/api/v1/users", token: token).status == .ok)
            try await UserAdministration.setRole(email: user.email, role: .student, in: parts.store)
            #expect(try await Self.becomes(.unauthorized, within: .seconds(5)) { try await client.request(.get, "/api/v1/users", token: token).status })
        }
    }

    /// Whether `status` answers `expected` within `timeout` (asked every 50 ms).
    static func becomes(_ expected: HTTPResponse.Status, within timeout: Duration, _ status: () async throws -> HTTPResponse.Status) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await status() == expected { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test(arguments: TestEngine.all) func changesToUsersAndIngestTokensAreAudited(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            struct Entry: Decodable {
                var action: String
                var entity: String
                var entityId: String
                var details: String
                var actorEmail: String
                var requestId: String
            }
            struct Page: Decodable { var entries: [Entry] }
            let admin = try await client.login().accessToken
            let user = try await Self.createUser(client, role: .student, admin: admin)
            #expect(try await client.request(.patch, "/api/v1/users/\(user.id)", token: admin, json: #"{"password":"another-password-2"}"#).status == .ok)
            #expect(try await client.request(.delete, "/api/v1/users/\(user.id)", token: admin).status == .noContent)
            let token = try await client.request(.post, "/api/v1/tokens", token: admin, json: #"{"name":"probe"}"#)
            let tokenID = try #require(try token.decode([String: AnyCodable].self)["id"]?.number.map { Int($0) })
            #expect(try await client.request(.delete, "/api/v1/tokens/\(tokenID)", token: admin).status == .noContent)
            // A change that did nothing leaves no row.
            #expect(try await client.request(.delete, "/api/v1/tokens/\(tokenID)", token: admin).status == .notFound)

            let users = try await client.request(.get, "/api/v1/audit?entity=user", token: admin).decode(Page.self).entries
            #expect(users.map(\.action) == ["delete", "change", "create"])
            #expect(users.allSatisfy { $0.entityId == String(user.id) && $0.actorEmail == TestApp.adminEmail && !$0.requestId.isEmpty })
            #expect(users[1].details == "password" && users[2].details == "\(user.email) as student")
            let tokens = try await client.request(.get, "/api/v1/audit?entity=ingest-token", token: admin).decode(Page.self).entries
            #expect(tokens.map(\.action) == ["revoke", "create"])
            #expect(tokens.allSatisfy { $0.entityId == String(tokenID) })
            // No secret in the trail.
            let trail = try await client.request(.get, "/api/v1/audit", token: admin).text
            #expect(!trail.contains("another-password-2") && !trail.contains("pbi_") && !trail.contains("$2b$"))
        }
    }

    @Test(arguments: TestEngine.all) func commandLineChangesAreInTheAuditTrailToo(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            struct Entry: Decodable {
                var action: String
                var entity: String
                var details: String
                var actorId: Int64
                var actorEmail: String
                var requestId: String
            }
            struct Page: Decodable { var entries: [Entry] }
            _ = try await UserAdministration.create(email: "cli@example.com", password: "cli-password-1", role: .instructor, in: parts.store)
            try await UserAdministration.setRole(email: "cli@example.com", role: .student, in: parts.store)
            try await UserAdministration.resetPassword(email: "cli@example.com", password: "cli-password-2", in: parts.store)
            let (token, _) = try await UserAdministration.createIngestToken(name: "agent", in: parts.store)
            #expect(try await UserAdministration.revokeIngestToken(id: token.id, in: parts.store))
            _ = try await ClassAdministration.create(name: "C", code: "cli-1", description: "", ownerEmail: TestApp.adminEmail, in: parts.store)

            let admin = try await client.login().accessToken
            let entries = try await client.request(.get, "/api/v1/audit", token: admin).decode(Page.self).entries
            #expect(
                entries.map { "\($0.action) \($0.entity)" } == [
                    "create class", "revoke ingest-token", "create ingest-token", "change user", "change user", "create user",
                ])
            #expect(entries.map(\.details) == ["code cli-1", "", "agent", "password", "role student", "cli@example.com as instructor"])
            #expect(entries.allSatisfy { $0.actorId == 0 && $0.actorEmail.hasPrefix("command line (") && $0.requestId.hasPrefix("cli-") })
        }
    }

    @Test func passwordsFollowThePolicy() {
        #expect(PasswordPolicy.problem(with: "password") != nil)
        #expect(PasswordPolicy.problem(with: "Password123") != nil)
        #expect(PasswordPolicy.problem(with: String(repeating: "\0", count: 12)) != nil)
        #expect(PasswordPolicy.problem(with: String(repeating: "a", count: 73)) != nil)
        #expect(PasswordPolicy.problem(with: "correct horse battery") == nil)
    }

    @Test(arguments: TestEngine.all) func weakPasswordsAndOverlongOnesAreRefusedWith422(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            for password in ["password", "qwertyuiop", #"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"#, String(repeating: "x", count: 73)] {
                let response = try await client.request(
                    .post, "/api/v1/users", token: admin, json: #"{"email":"weak@example.com","password":"\#(password)","role":"student"}"#)
                #expect(response.status == .unprocessableContent, "\(password.prefix(12)) gave \(response.status)")
                #expect(response.error?.field == "password")
            }
            let login = try await client.request(
                .post, "/auth/login", json: #"{"email":"admin@example.com","password":"\#(String(repeating: "x", count: 100))"}"#)
            #expect(login.status == .unprocessableContent)
        }
    }

    /// Each route refuses a body over its own limit with a 413 in our error shape, without
    /// reading it, once the caller is known to be allowed to send one; then the server answers
    /// the next request.
    @Test(arguments: TestEngine.all) func oversizedBodiesAnswer413OnEveryRoute(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, configure: { $0.openIngest = true }) { client, parts in
            let scene = try await SubmissionScene.make(client)
            let submitted = try await client.submit(Notebook.json("print(1)"), to: scene.assignmentID, token: scene.alice)
            let submission = try submitted.decode(SubmissionAnswer.self)
            let over = { (limit: Int) in ByteBuffer(repeating: UInt8(ascii: "a"), count: limit + 1) }
            let ingestLimit = parts.config.maxBodyBytes
            let cases: [(HTTPRequest.Method, String, String?, ByteBuffer)] = [
                (.post, "/auth/login", nil, over(Request.standardBodyLimit)),
                (.post, "/auth/refresh", nil, over(Request.standardBodyLimit)),
                (.post, "/login", nil, over(16 * 1024)),
                (.post, "/api/v1/users", scene.admin, over(Request.standardBodyLimit)),
                (.post, "/api/v1/classes", scene.owner, over(Request.standardBodyLimit)),
                (.post, "/api/v1/metrics", scene.admin, over(ingestLimit)),
                (.post, "/api/v1/events", nil, over(ingestLimit)),
                (.post, "/api/v1/submissions?assignmentId=\(scene.assignmentID)", scene.alice, over(SubmissionsController.maxNotebookBytes)),
                (.patch, "/api/v1/submissions/\(submission.id)", scene.owner, over(Request.standardBodyLimit)),
                (.post, "/api/v1/classes/\(scene.classID)/students/csv", scene.owner, over(1 << 20)),
            ]
            for (method, path, token, body) in cases {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let token { headers[.authorization] = "Bearer \(token)" }
                let response = try await client.executeRequest(uri: path, method: method, headers: headers, body: body)
                #expect(response.status == .contentTooLarge, "\(method) \(path) gave \(response.status)")
                #expect(response.error?.code == "too_large", "\(method) \(path)")
            }
            #expect(try await client.request(.get, "/auth/me", token: scene.owner).status == .ok)
        }
    }

    /// A chunked body has no length to check in advance: it is read up to the limit, then refused.
    @Test func aChunkedBodyOverTheLimitAnswers413() async throws {
        try await TestApp.run(.live) { client, _ in
            let port = try #require(client.port)
            let chunk = ByteBuffer(repeating: UInt8(ascii: "a"), count: 16 * 1024)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/auth/login")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .stream((0..<64).async.map { _ in chunk }, length: .unknown)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .payloadTooLarge)
            #expect(try await client.request(.get, "/health").status == .ok)
        }
    }
}

extension Range where Bound == Int {
    /// The numbers as an async sequence, for streaming request bodies.
    fileprivate var async: AsyncStream<Int> {
        AsyncStream { continuation in
            for number in self { continuation.yield(number) }
            continuation.finish()
        }
    }
}

/// Connections that hold a slot without sending a request are closed; WebSockets are not.
@Suite("Connection limits", .throwawayPostgres, .timeLimit(.minutes(2)))
struct ConnectionLimitTests {
    @Test func aClientThatNeverFinishesItsHeadersIsCutOffButASocketStays() async throws {
        // Timeouts with room to spare: on a loaded 2-core CI machine a 1 s timeout closed the test
        // client's own WebSocket before its upgrade request was read.
        try await TestApp.run(.live, configure: { $0.idleTimeout = .seconds(2) }) { client, _ in
            let port = try #require(client.port)
            let token = try await client.login().accessToken
            let slow = try StalledClient(port: port, sending: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let idle = try StalledClient(port: port, sending: "")
            #expect(await slow.closedByServer(within: .seconds(10)))
            #expect(await idle.closedByServer(within: .seconds(10)))
            // Meanwhile others are served (on a new connection: the test client's own idled past
            // the timeout too), and a WebSocket outlives the timeout.
            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"), timeout: .seconds(30))
            #expect(health.status == .ok)
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(token, on: outbound)
                try await Task.sleep(for: .seconds(4.5))
                try await outbound.send(#"{"op":"ping"}"#)
                #expect(try await reader.next().type == "pong")
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }
}

extension ConnectionLimitTests {
    /// A complete head and then a body that trickles (250 bytes/s, under the 1 KiB/s floor) is
    /// cut off; a body that keeps coming at a usable pace (10 KB/s) over several windows is
    /// answered.
    @Test func aBodyThatTricklesIsCutOffAndOneThatFlowsIsAnswered() async throws {
        try await TestApp.run(.live, configure: { $0.idleTimeout = .seconds(3) }) { client, _ in
            let port = try #require(client.port)
            let head = "POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
            let trickle = try StalledClient(port: port, sending: head + "20000\r\n\r\n")
            var closed = false
            for _ in 0..<60 where !closed {
                trickle.send(String(repeating: " ", count: 100))
                closed = await trickle.closedByServer(within: .milliseconds(400))
            }
            #expect(closed)

            let body = #"{"email":"admin@example.com","password":"wrong password"}"# + String(repeating: " ", count: 60_000)
            let flowing = try StalledClient(port: port, sending: head + "\(body.utf8.count)\r\n\r\n")
            let started = ContinuousClock.now
            await flowing.sendPaced(body, chunk: 2000, every: .milliseconds(200))
            let sent = ContinuousClock.now - started
            let answer = await flowing.response(within: .seconds(20))
            #expect(answer.hasPrefix("HTTP/1.1 401"), "sent in \(sent), answered after \(ContinuousClock.now - started): \(answer)")
        }
    }

    @Test func connectionsOverThePerAddressCapAreClosedAtOnce() async throws {
        try await TestApp.run(.live, configure: { $0.maxConnectionsPerAddress = 3 }) { client, _ in
            let port = try #require(client.port)
            // The test client's own connection is the first.
            #expect(try await client.request(.get, "/health").status == .ok)
            var first: StalledClient? = try StalledClient(port: port, sending: "")
            let second = try StalledClient(port: port, sending: "")
            #expect(await first?.closedByServer(within: .milliseconds(500)) == false)
            #expect(await second.closedByServer(within: .milliseconds(500)) == false)
            let over = try StalledClient(port: port, sending: "")
            #expect(await over.closedByServer(within: .seconds(5)))
            // A slot that frees up is taken again.
            first = nil
            try await Task.sleep(for: .milliseconds(300))
            let again = try StalledClient(port: port, sending: "")
            #expect(await again.closedByServer(within: .milliseconds(500)) == false)
            #expect(try await client.request(.get, "/health").status == .ok)
            _ = first
        }
    }
}
