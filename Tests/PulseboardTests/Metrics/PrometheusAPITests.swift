import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import PulseboardKernel
@testable import PulseboardMetrics
@testable import PulseboardPromQL

/// The Prometheus HTTP API as Grafana calls it, with Pulseboard's own series. What PromQL answers
/// is compared with the real Prometheus in `.ci/run` (scripts/promql_check.py).
@Suite("Prometheus query API", .throwawayPostgres)
struct PrometheusAPITests {
    /// 2026-01-01T00:00:00Z in seconds.
    static let start: Int64 = 1_767_225_600

    /// Two rooms' temperatures every 15 s for two minutes, and a dotted name next to its mapped one.
    static func loadSeries(_ client: some TestClientProtocol, admin: String) async throws {
        var points: [String] = []
        for step in 0..<9 {
            let time = Timestamp.format(milliseconds: (start + Int64(step) * 15) * 1000)
            points.append(#"{"name":"sensor.temp","value":\#(20 + Double(step) / 4),"timestamp":"\#(time)","tags":{"room":"lab"}}"#)
            points.append(#"{"name":"sensor.temp","value":\#(18 - Double(step)),"timestamp":"\#(time)","tags":{"room":"office"}}"#)
        }
        let stamp = Timestamp.format(milliseconds: start * 1000)
        points.append(#"{"name":"host.cpu","value":1,"timestamp":"\#(stamp)"}"#)
        points.append(#"{"name":"host_cpu","value":2,"timestamp":"\#(stamp)"}"#)
        #expect(try await client.ingest("[" + points.joined(separator: ",") + "]", token: admin).status == .ok)
    }

    static func apiToken(_ client: some TestClientProtocol, for token: String) async throws -> String {
        let created = try await client.request(.post, "/api/v1/me/tokens", token: token, json: #"{"name":"grafana"}"#)
        try #require(created.status == .created)
        return try created.decode(CreatedToken.self).token
    }

    static func form(_ fields: String, token: String) -> (HTTPFields, ByteBuffer) {
        ([.authorization: "Bearer \(token)", .contentType: "application/x-www-form-urlencoded"], ByteBuffer(string: fields))
    }

    /// The requests Grafana's Prometheus data source sends, in its order: the "Save & test"
    /// query `1+1`, the build information, label names and values for the query editor, series,
    /// then a panel's range query, each by GET or form POST as Grafana sends them.
    @Test(arguments: TestEngine.all) func grafanasCallSequence(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            try await Self.loadSeries(client, admin: admin)
            let token = try await Self.apiToken(client, for: admin)
            #expect(token.hasPrefix("pbu_"))
            let range = "start=\(Self.start)&end=\(Self.start + 120)"

            let (headers, body) = Self.form("query=1%2B1&time=\(Self.start)", token: token)
            let test = try await client.executeRequest(uri: "/prometheus/api/v1/query", method: .post, headers: headers, body: body)
            #expect(test.text == #"{"status":"success","data":{"resultType":"scalar","result":[1767225600,"2"]}}"#)

            let info = try await client.request(.get, "/prometheus/api/v1/status/buildinfo", token: token)
            #expect(info.status == .ok && info.text.contains(#""version":"2.42.0""#))

            let labels = try await client.request(.get, "/prometheus/api/v1/labels?\(range)", token: token)
            #expect(labels.text == #"{"status":"success","data":["__name__","pulseboard_name","room"]}"#)
            let names = try await client.request(.get, "/prometheus/api/v1/label/__name__/values?\(range)", token: token)
            #expect(names.text == #"{"status":"success","data":["host_cpu","sensor_temp"]}"#)
            let rooms = try await client.request(.get, "/prometheus/api/v1/label/room/values?match[]=sensor_temp&\(range)", token: token)
            #expect(rooms.text == #"{"status":"success","data":["lab","office"]}"#)
            let series = try await client.request(.get, "/prometheus/api/v1/series?match%5B%5D=sensor_temp%7Broom%3D%22lab%22%7D&\(range)", token: token)
            #expect(series.text == #"{"status":"success","data":[{"__name__":"sensor_temp","room":"lab"}]}"#)
            #expect(try await client.request(.get, "/prometheus/api/v1/metadata", token: token).text == #"{"status":"success","data":{}}"#)

            let (rangeHeaders, rangeBody) = Self.form(
                "query=sensor_temp%7Broom%3D%22lab%22%7D+*+2&start=\(Self.start)&end=\(Self.start + 60)&step=30", token: token)
            let panel = try await client.executeRequest(uri: "/prometheus/api/v1/query_range", method: .post, headers: rangeHeaders, body: rangeBody)
            #expect(
                panel.text
                    == #"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"room":"lab"},"values":[[1767225600,"40"],[1767225630,"41"],[1767225660,"42"]]}]}}"#
            )
            // A GET with the query in the URL, spaces as "+" as Go's clients encode them.
            let grouped = try await client.request(
                .get, "/prometheus/api/v1/query?query=sum+by+(room)+(sensor_temp)&time=\(Self.start + 30)", token: token)
            #expect(
                grouped.text.hasPrefix(#"{"status":"success","data":{"resultType":"vector","result":["#)
                    && grouped.text.contains(#"{"metric":{"room":"lab"},"value":[1767225630,"20.5"]}"#)
                    && grouped.text.contains(#"{"metric":{"room":"office"},"value":[1767225630,"16"]}"#))
            // Basic authentication with the token as the password, as Grafana's basic auth sends it.
            let basic = Data("grafana:\(token)".utf8).base64EncodedString()
            let withBasic = try await client.executeRequest(
                uri: "/prometheus/api/v1/query?query=1%2B1", method: .get, headers: [.authorization: "Basic \(basic)"], body: nil)
            #expect(withBasic.status == .ok)
        }
    }

    /// `host.cpu` and `host_cpu` are both `host_cpu` to Prometheus: the one whose name changed
    /// carries its own.
    @Test func dottedNamesMapAndCollisionsStayApart() async throws {
        try await TestApp.run { client, _ in
            let admin = try await client.login().accessToken
            try await Self.loadSeries(client, admin: admin)
            let response = try await client.request(.get, "/prometheus/api/v1/query?query=host_cpu&time=\(Self.start)", token: admin)
            #expect(response.text.contains(#"{"metric":{"__name__":"host_cpu","pulseboard_name":"host.cpu"},"value":[1767225600,"1"]}"#))
            #expect(response.text.contains(#"{"metric":{"__name__":"host_cpu"},"value":[1767225600,"2"]}"#))
            #expect(PrometheusNames.metricName("sensor-1/temp.c") == "sensor_1_temp_c")
            #expect(PrometheusNames.metricName("9lives:total") == "_9lives:total")
            #expect(PrometheusNames.labelName("k=v:x") == "k_v_x")
        }
    }

    @Test func onlyUsersWhoMayReadMetricsQueryAndTheirTokensEndWithThem() async throws {
        try await TestApp.run { client, _ in
            let admin = try await client.login().accessToken
            let ingest = try await client.ingestToken(adminToken: admin).token
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            let instructorEmail = "grafana-instructor@example.com"
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin, email: instructorEmail)
            let instructorToken = try await Self.apiToken(client, for: instructor)
            let query = "/prometheus/api/v1/query?query=1%2B1"

            let anonymous = try await client.request(.get, query)
            #expect(anonymous.status == .unauthorized && anonymous.text.hasPrefix(#"{"status":"error","errorType":"bad_data""#))
            #expect(try await client.request(.get, query, token: ingest).status == .forbidden)
            #expect(try await client.request(.get, query, token: student).status == .forbidden)
            #expect(try await client.request(.get, query, token: instructorToken).status == .ok)
            // An API token does not outlive its revocation, nor its user.
            let listed = try await client.request(.get, "/api/v1/me/tokens", token: instructor)
            #expect(listed.text.contains(#""name":"grafana""#) && !listed.text.contains(instructorToken))
            let id = try #require(try listed.decode(TokenListing.self).tokens.first?.id)
            #expect(try await client.request(.delete, "/api/v1/me/tokens/\(id)", token: admin).status == .notFound, "only its user revokes it")
            #expect(try await client.request(.delete, "/api/v1/me/tokens/\(id)", token: instructor).status == .noContent)
            #expect(try await client.request(.get, query, token: instructorToken).status == .unauthorized)
            let second = try await Self.apiToken(client, for: instructor)
            #expect(try await client.request(.get, query, token: second).status == .ok)
            let users = try await client.request(.get, "/api/v1/users", token: admin)
            let user = try #require(try users.decode(UserListing.self).users.first { $0.email == instructorEmail })
            #expect(try await client.request(.delete, "/api/v1/users/\(user.id)", token: admin).status == .noContent)
            #expect(try await client.request(.get, query, token: second).status == .unauthorized)
        }
    }

    @Test func badQueriesAnswerAsPrometheusDoes() async throws {
        try await TestApp.run(configure: { $0.queryMaxSamples = 5 }) { client, _ in
            let admin = try await client.login().accessToken
            try await Self.loadSeries(client, admin: admin)
            let cases: [(String, HTTPResponse.Status, String)] = [
                (
                    "query?query=rate(sensor_temp)", .badRequest,
                    #"{"status":"error","errorType":"bad_data","error":"expected type range vector in call to function \"rate\", got instant vector"}"#
                ),
                ("query?query=label_replace(up,%22a%22,%22b%22,%22c%22,%22d%22)", .badRequest, #"function \"label_replace\" is not supported by Pulseboard"#),
                (
                    "query?query=count_over_time(sensor_temp%5B2m%5D)&time=\(Self.start + 120)", .unprocessableContent,
                    #""errorType":"execution","error":"query processing would load too many samples into memory in query execution""#
                ),
                ("query_range?query=1&start=10&end=5&step=1", .badRequest, "end timestamp must not be before start time"),
                ("query_range?query=1&start=0&end=100000&step=1", .badRequest, "exceeded maximum resolution of 11,000 points per timeseries"),
                ("query_range?query=1&start=0&end=10&step=0", .badRequest, "zero or negative query resolution step widths are not accepted"),
                ("query_range?query=1&start=yesterday&end=10&step=1", .badRequest, #"cannot parse \"yesterday\" to a valid timestamp"#),
                ("query_range?query=sensor_temp[1m]&start=0&end=10&step=1", .badRequest, "invalid expression type \\\"range vector\\\" for range query"),
                ("query", .badRequest, #"invalid parameter \"query\""#),
                ("series", .badRequest, "no match[] parameter provided"),
            ]
            for (path, status, text) in cases {
                let response = try await client.request(.get, "/prometheus/api/v1/\(path)", token: admin)
                #expect(response.status == status, "\(path): \(response.text)")
                #expect(response.text.contains(text), "\(path): \(response.text)")
            }
            // A matrix at an instant: the raw samples of the window.
            let raw = try await client.request(
                .get, "/prometheus/api/v1/query?query=sensor_temp%7Broom%3D%22lab%22%7D%5B15s%5D&time=\(Self.start + 15)", token: admin)
            #expect(
                raw.text
                    == #"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"sensor_temp","room":"lab"},"values":[[1767225600,"20"],[1767225615,"20.25"]]}]}}"#
            )
        }
    }

    private struct TokenListing: Decodable {
        struct Token: Decodable { var id: Int64 }
        var tokens: [Token]
    }

    private struct UserListing: Decodable {
        struct User: Decodable {
            var id: Int64
            var email: String
        }
        var users: [User]
    }
}
