import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardApp
@testable import PulseboardHTTP

@Suite("Rate limits")
struct RateLimitTests {
    @Test func aWindowCountsItsRequestsAndThenStartsAgain() {
        let limiter = RateLimiter(limit: .init(requests: 2, period: .seconds(10)))
        let start = ContinuousClock.now
        #expect(limiter.take("a", now: start) == .init(allowed: true, remaining: 1, resetSeconds: 10))
        #expect(limiter.take("a", now: start + .seconds(1)) == .init(allowed: true, remaining: 0, resetSeconds: 9))
        #expect(limiter.take("a", now: start + .seconds(2)) == .init(allowed: false, remaining: 0, resetSeconds: 8))
        #expect(limiter.take("b", now: start + .seconds(2)).allowed)
        #expect(limiter.take("a", now: start + .seconds(10)) == .init(allowed: true, remaining: 1, resetSeconds: 10))
    }

    @Test func eachClientHasItsOwnLimitAnsweredWith429AndTheHeaders() async throws {
        try await TestApp.run(configure: { $0.rateLimit = 3 }) { client, _ in
            // Logins count for the address, everything after for the user who makes it.
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let remaining = HTTPField.Name("RateLimit-Remaining")!
            var seen: [String?] = []
            for _ in 0..<3 {
                let response = try await client.request(.get, "/api/v1/classes", token: instructor)
                #expect(response.status == .ok)
                seen.append(response.headers[remaining])
            }
            #expect(seen == ["2", "1", "0"])
            let limited = try await client.request(.get, "/api/v1/classes", token: instructor)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.error?.code == "rate_limited")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(limited.headers[HTTPField.Name("RateLimit-Limit")!] == "3" && limited.headers[remaining] == "0")
            // Another user, a class token and health checks count on their own, or not at all.
            #expect(try await client.request(.get, "/api/v1/classes", token: admin).status == .ok)
            let course = try await client.createClass("limits", token: admin)
            #expect(try await client.sendEvents([ExtensionEvent.json("help")], classToken: course.ingestToken).status == .ok)
            for _ in 0..<5 { #expect(try await client.request(.get, "/health").status == .ok) }
        }
    }
}
