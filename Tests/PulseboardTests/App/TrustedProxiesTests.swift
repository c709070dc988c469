import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardApp
@testable import PulseboardHTTP

@Suite("Trusted proxies")
struct TrustedProxiesTests {
    @Test func rangesAreParsedAndMatched() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"])
        for inside in ["10.1.2.3", "192.168.1.7", "fd12::1", "::1", "::ffff:10.0.0.1"] { #expect(proxies.contains(inside), "\(inside)") }
        for outside in ["11.0.0.1", "192.168.1.8", "fe80::1", "::2", "garbage", ""] { #expect(!proxies.contains(outside), "\(outside)") }
        for bad in ["10.0.0.0/33", "10.0.0/8", "example.com", "::1/129", "1.2.3.4/x"] {
            #expect(throws: TrustedProxies.InvalidEntry.self, "\(bad)") { try TrustedProxies(parsing: [bad]) }
        }
        #expect(try TrustedProxies(parsing: ["0.0.0.0/0"]).contains("203.0.113.9"))
    }

    @Test func theClientIsTheFirstUntrustedHopFromTheRight() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8"])
        // The client's own header is kept by the proxies; only the hops they appended are believed.
        #expect(proxies.client(peer: "10.0.0.2", forwardedFor: "6.6.6.6, 203.0.113.5, 10.0.0.9", realIP: nil) == "203.0.113.5")
        #expect(proxies.client(peer: "10.0.0.2", forwardedFor: "203.0.113.5:4711", realIP: nil) == "203.0.113.5")
        #expect(proxies.client(peer: "10.0.0.2", forwardedFor: "[2001:db8::1]:443", realIP: nil) == "2001:db8::1")
        #expect(proxies.client(peer: "10.0.0.2", forwardedFor: nil, realIP: "203.0.113.6") == "203.0.113.6")
        #expect(proxies.client(peer: "10.0.0.2", forwardedFor: nil, realIP: nil) == "10.0.0.2")
        // An unreadable hop stops the walk at the last proxy believed.
        #expect(proxies.client(peer: "10.0.0.2", forwardedFor: "203.0.113.5, unknown, 10.0.0.3", realIP: nil) == "10.0.0.3")
        // Not from a proxy: the headers are the client's own claim.
        #expect(proxies.client(peer: "198.51.100.1", forwardedFor: "203.0.113.5", realIP: "203.0.113.6") == "198.51.100.1")
    }

    /// Over a real socket (the peer is 127.0.0.1): behind a trusted proxy each forwarded client
    /// has its own login-limit bucket; without trust, forwarded headers choose nothing.
    @Test func loginLimitsCountTheClientBehindATrustedProxyAndNoClaimedAddress() async throws {
        let limits = { (config: inout ServerConfig) in config.loginLimits = .init(perAccount: 100, perAddress: 2) }
        try await TestApp.run(
            .live,
            configure: {
                limits(&$0); $0.trustedProxies = ["127.0.0.1", "::1"]
            }
        ) { client, _ in
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.1") == .unauthorized)
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.1") == .unauthorized)
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.1") == .tooManyRequests)
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.2") == .unauthorized)
            // The class serverUrl takes the scheme the proxy says the client used.
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: try await client.login().accessToken)
            let created = try await client.request(
                .post, "/api/v1/classes", token: owner, json: #"{"name":"Behind","code":"behind"}"#,
                headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
            #expect(created.text.contains(#""serverUrl":"https:\/\/localhost"#) || created.text.contains(#""serverUrl":"https://localhost"#), "\(created.text)")
        }
        try await TestApp.run(.live, configure: { limits(&$0) }) { client, _ async throws in
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.1") == .unauthorized)
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.2") == .unauthorized)
            #expect(try await Self.failedLogin(client, forwardedFor: "203.0.113.3") == .tooManyRequests)
        }
    }

    static func failedLogin(_ client: any TestClientProtocol, forwardedFor: String) async throws -> HTTPResponse.Status {
        try await client.request(
            .post, "/auth/login", json: #"{"email":"nobody@example.com","password":"wrong-one"}"#,
            headers: [HTTPField.Name("X-Forwarded-For")!: forwardedFor]
        ).status
    }
}
