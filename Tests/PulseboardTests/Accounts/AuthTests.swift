import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import Testing

@testable import PulseboardAccounts
@testable import PulseboardKernel

@Suite("Authentication and roles", .throwawayPostgres)
struct AuthTests {
    @Test(arguments: TestEngine.all) func loginReturnsBearerTokensAndMeShowsTheUser(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let tokens = try await client.login()
            #expect(tokens.tokenType == "bearer")
            #expect(tokens.expiresIn == 900)
            let me = try await client.request(.get, "/auth/me", token: tokens.accessToken)
            #expect(me.status == .ok)
            #expect(me.text.contains(#""email":"admin@example.com""#))
            #expect(me.text.contains(#""role":"admin""#))
            #expect(!me.text.contains("password"))
        }
    }

    @Test(arguments: TestEngine.all) func unknownEmailAndWrongPasswordGiveTheSameAnswer(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let wrongPassword = try await client.request(.post, "/auth/login", json: #"{"email":"admin@example.com","password":"nope-nope"}"#)
            let unknownEmail = try await client.request(.post, "/auth/login", json: #"{"email":"ghost@example.com","password":"nope-nope"}"#)
            #expect(wrongPassword.status == .unauthorized)
            #expect(unknownEmail.status == .unauthorized)
            #expect(wrongPassword.text == unknownEmail.text)
        }
    }

    @Test(arguments: TestEngine.all) func malformedLoginIsA400(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            for body in ["{not json", #"{"email":"a@b.c"}"#, #"{"email":1,"password":"x"}"#, "[]"] {
                let response = try await client.request(.post, "/auth/login", json: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.error?.code != nil)
            }
        }
    }

    @Test(arguments: TestEngine.all) func failedLoginsAreLimitedPerAccount(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, configure: { $0.loginLimits = .init(perAccount: 3, perAddress: 100) }) { client, _ in
            for _ in 0..<3 {
                let response = try await client.request(.post, "/auth/login", json: #"{"email":"admin@example.com","password":"wrong-one"}"#)
                #expect(response.status == .unauthorized)
            }
            let limited = try await client.request(.post, "/auth/login", json: #"{"email":"admin@example.com","password":"\#(TestApp.adminPassword)"}"#)
            #expect(limited.status == .tooManyRequests)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(limited.error?.code == "rate_limited")
        }
    }

    @Test(arguments: TestEngine.all) func failedLoginsAreLimitedPerAddress(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, configure: { $0.loginLimits = .init(perAccount: 100, perAddress: 2) }) { client, _ in
            for email in ["a@example.com", "b@example.com"] {
                #expect(try await client.request(.post, "/auth/login", json: #"{"email":"\#(email)","password":"wrong-one"}"#).status == .unauthorized)
            }
            let limited = try await client.request(.post, "/auth/login", json: #"{"email":"c@example.com","password":"wrong-one"}"#)
            #expect(limited.status == .tooManyRequests)
        }
    }

    @Test(arguments: TestEngine.all) func expiredForeignAndUnsignedTokensAreRejected(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, pulseboard in
            let admin = try #require(try await Accounts(store: pulseboard.store).user(email: TestApp.adminEmail))
            let sameSecret = try await AccessTokens(secret: "test-secret-that-is-at-least-32-bytes-long", lifetime: .seconds(900))
            let expired = try await sameSecret.issue(for: admin, now: Date().addingTimeInterval(-3600))
            let otherSecret = try await AccessTokens(secret: "another-secret-that-is-32-bytes-long!!", lifetime: .seconds(900))
            let foreign = try await otherSecret.issue(for: admin)
            // The same claims with `alg: none` and no signature.
            let parts = foreign.split(separator: ".")
            let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncoded
            let unsigned = "\(noneHeader).\(parts[1])."
            for token in [expired, foreign, unsigned, "garbage"] {
                let response = try await client.request(.get, "/auth/me", token: token)
                #expect(response.status == .unauthorized, "token \(token.prefix(12)) was accepted")
                #expect(response.error?.code == "unauthenticated")
            }
            #expect(try await client.request(.get, "/auth/me", token: try await sameSecret.issue(for: admin)).status == .ok)
        }
    }

    @Test func shortSecretsAreRefused() async throws {
        await #expect(throws: ConfigurationError.self) {
            _ = try await AccessTokens(secret: "too-short", lifetime: .seconds(60))
        }
    }

    @Test(arguments: TestEngine.all) func refreshRotatesAndLogoutRevokes(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let first = try await client.login()
            let refreshed = try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(first.refreshToken)"}"#)
            #expect(refreshed.status == .ok)
            let second = try refreshed.decode(TokenPair.self)
            #expect(second.refreshToken != first.refreshToken)
            // The used refresh token no longer works.
            #expect(try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(first.refreshToken)"}"#).status == .unauthorized)
            #expect(try await client.request(.post, "/auth/logout", json: #"{"refreshToken":"\#(second.refreshToken)"}"#).status == .noContent)
            #expect(try await client.request(.post, "/auth/refresh", json: #"{"refreshToken":"\#(second.refreshToken)"}"#).status == .unauthorized)
        }
    }

    @Test(arguments: TestEngine.all) func adminRoutesCheckTheRole(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            let created = try await client.request(.post, "/api/v1/tokens", token: admin, json: #"{"name":"probe"}"#)
            let ingestToken = try created.decode([String: AnyCodable].self)["token"]?.string ?? ""
            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/api/v1/users", nil),
                (.post, "/api/v1/users", #"{"email":"x@example.com","password":"password-123","role":"student"}"#),
                (.patch, "/api/v1/users/1", #"{"role":"student"}"#),
                (.delete, "/api/v1/users/1", nil),
                (.get, "/api/v1/tokens", nil),
                (.post, "/api/v1/tokens", #"{"name":"x"}"#),
                (.delete, "/api/v1/tokens/1", nil),
            ]
            for (method, path, body) in routes {
                #expect(try await client.request(method, path, json: body).status == .unauthorized, "\(method) \(path) without a token")
                for token in [instructor, student, ingestToken] {
                    let response = try await client.request(method, path, token: token, json: body)
                    #expect(response.status == .forbidden, "\(method) \(path) as a non-admin gave \(response.status)")
                }
            }
        }
    }
}
