import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import PulseboardKernel

/// The class-level series that the Prometheus API offers an instructor (for Grafana): events,
/// errors and active students per minute and open help requests, for the classes they teach.
@Suite("Class series in the Prometheus API", .throwawayPostgres, .timeLimit(.minutes(2)))
struct ClassSeriesTests {
    struct Vector: Decodable {
        struct Data: Decodable {
            struct Sample: Decodable {
                var metric: [String: String]
                var value: [AnyCodable]
            }
            var result: [Sample]
        }
        var data: Data
    }

    /// name → value of each series a query answers at `time`.
    static func query(_ client: some TestClientProtocol, _ promql: String, at time: Int64, token: String) async throws -> [String: Double] {
        let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promql
        let response = try await client.request(.get, "/prometheus/api/v1/query?query=\(encoded)&time=\(time)", token: token)
        try #require(response.status == .ok, "\(response.text)")
        return Dictionary(
            uniqueKeysWithValues: try response.decode(Vector.self).data.result.map { sample in
                ("\(sample.metric["__name__"] ?? "")/\(sample.metric["class_code"] ?? "")", Double(sample.value[1].string ?? "") ?? .nan)
            })
    }

    @Test(arguments: TestEngine.all) func anInstructorChartsTheirClassesAndNoOthers(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let other = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let mine = try await client.createClass("charted", token: instructor)
            _ = try await client.createClass("elsewhere", token: other)
            // Sent and stamped in one minute: not in the last seconds of one.
            let second = Date().millisecondsSince1970 % 60_000
            if second > 50_000 { try await Task.sleep(for: .milliseconds(60_500 - second)) }
            let events = [
                ExtensionEvent.json("cell_executed", email: "a@example.com", cell: 1, hasError: false),
                ExtensionEvent.json("cell_executed", email: "a@example.com", cell: 2, hasError: true, error: "NameError"),
                ExtensionEvent.json("cell_executed", email: "b@example.com", cell: 1, hasError: true, error: "TypeError"),
                ExtensionEvent.json("help", email: "b@example.com"),
            ]
            #expect(try await client.sendEvents(events, classToken: mine.ingestToken).status == .ok)
            _ = try await client.student("b@example.com", in: mine.id, token: instructor) { $0.helpRequest != nil && $0.recentErrors == 1 }

            // The minute that ends after the events were received holds them.
            let minuteEnd = (Date().millisecondsSince1970 / 60_000 + 1) * 60
            let seen = try await Self.query(client, #"{__name__=~"pulseboard_class_.+"}"#, at: minuteEnd, token: instructor)
            #expect(
                seen == [
                    "pulseboard_class_events_per_minute/charted": 4, "pulseboard_class_errors_per_minute/charted": 2,
                    "pulseboard_class_active_students/charted": 2, "pulseboard_class_open_help_requests/charted": 1,
                ])
            // Another instructor's class is not theirs to see; an admin sees both.
            let all = try await Self.query(client, "pulseboard_class_events_per_minute", at: minuteEnd, token: admin)
            #expect(all == ["pulseboard_class_events_per_minute/charted": 4, "pulseboard_class_events_per_minute/elsewhere": 0])
            let byClass = try await Self.query(client, #"sum by (class_code) (pulseboard_class_errors_per_minute)"#, at: minuteEnd, token: other)
            #expect(byClass == ["/elsewhere": 0])
        }
    }
}
