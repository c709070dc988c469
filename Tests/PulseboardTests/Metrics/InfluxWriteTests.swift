import CompressNIO
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import PulseboardHTTP
@testable import PulseboardKernel
@testable import PulseboardMetrics

/// `/write`, `/api/v2/write`, `/ping` and `/query` as the InfluxDB clients and Telegraf use them.
/// The real clients run against a built server in `.ci/run` (scripts/agents_check.py); these
/// are the requests they send, and the bad ones they might.
@Suite("InfluxDB write API", .throwawayPostgres)
struct InfluxWriteTests {
    /// 2026-01-01T00:00:00Z in nanoseconds.
    static let start: Int64 = 1_767_225_600_000_000_000

    static func lines(_ values: [Double], measurement: String = "cpu", from index: Int = 0) -> String {
        values.enumerated().map { "\(measurement),host=a usage=\($1) \(start + Int64(index + $0) * 1_000_000_000)" }.joined(separator: "\n")
    }

    static func history(_ client: some TestClientProtocol, _ name: String, admin: String) async throws -> [Double] {
        let response = try await client.request(
            .get, "/api/v1/metrics?name=\(name)&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", token: admin)
        return try response.decode(History.self).series.flatMap { $0.points ?? [] }.map(\.value)
    }

    struct History: Decodable {
        struct Series: Decodable {
            struct Point: Decodable { var value: Double }
            var points: [Point]?
        }
        var series: [Series]
    }

    @Test(arguments: TestEngine.all) func everyFormOfTheTokenWritesAndThePointsAreStored(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let token = try await client.ingestToken(adminToken: admin).token
            let basic = Data("telegraf:\(token)".utf8).base64EncodedString()
            let writes: [(uri: String, authorization: String?)] = [
                ("/api/v2/write?org=o&bucket=b&precision=ns", "Token \(token)"),
                ("/api/v2/write?org=o&bucket=b", "Bearer \(token)"),
                ("/write?db=telegraf", "Basic \(basic)"),
                ("/write?db=telegraf&u=telegraf&p=\(token)", nil),
            ]
            for (index, write) in writes.enumerated() {
                var headers: HTTPFields = [:]
                if let authorization = write.authorization { headers[.authorization] = authorization }
                let body = Self.lines([Double(index)], from: index)
                let response = try await client.executeRequest(uri: write.uri, method: .post, headers: headers, body: ByteBuffer(string: body))
                #expect(response.status == .noContent, "\(write.uri): \(response.text)")
            }
            #expect(try await Self.history(client, "cpu.usage", admin: admin) == [0, 1, 2, 3])
            // Committed points go live like any other.
            #expect(parts.hub.sequence(of: "metrics:cpu.usage") == 4)
        }
    }

    @Test(arguments: TestEngine.all) func aCallerWithoutAnIngestRightGetsInfluxDBsErrors(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let ingest = try await client.ingestToken(adminToken: admin)
            let body = ByteBuffer(string: Self.lines([1]))

            let anonymous = try await client.executeRequest(uri: "/api/v2/write?bucket=b", method: .post, headers: [:], body: body)
            #expect(anonymous.status == .unauthorized)
            #expect(try anonymous.decode([String: String].self)["code"] == "unauthorized")
            let wrongPassword = try await client.executeRequest(uri: "/write?db=d&u=x&p=pbi_wrong", method: .post, headers: [:], body: body)
            #expect(wrongPassword.status == .unauthorized)
            #expect(try wrongPassword.decode([String: String].self)["error"] == "The token in ?p= is invalid or revoked.")
            let notIngest = try await client.executeRequest(
                uri: "/api/v2/write?bucket=b", method: .post, headers: [.authorization: "Token \(instructor)"], body: body)
            #expect(notIngest.status == .forbidden)
            #expect(try notIngest.decode([String: String].self) == ["code": "forbidden", "message": "Only ingest tokens and admins may ingest."])
            // A revoked token stops at once, in every form.
            #expect(try await client.request(.delete, "/api/v1/tokens/\(ingest.id)", token: admin).status == .noContent)
            let revoked = try await client.executeRequest(uri: "/write?db=d&p=\(ingest.token)", method: .post, headers: [:], body: body)
            #expect(revoked.status == .unauthorized)
            let revokedHeader = try await client.executeRequest(
                uri: "/api/v2/write?bucket=b", method: .post, headers: [.authorization: "Token \(ingest.token)"], body: body)
            #expect(revokedHeader.status == .unauthorized)
            #expect(try await Self.history(client, "cpu.usage", admin: admin).isEmpty)
        }
    }

    /// InfluxDB keeps the valid lines of a partly bad batch and answers 400 with the bad ones.
    @Test(arguments: TestEngine.all) func theValidLinesOfAPartlyBadBatchAreStored(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let body = [Self.lines([1]), "cpu,host=a usage=oops", Self.lines([2], from: 1), "cpu,host=a"].joined(separator: "\n")
            let v1 = try await client.executeRequest(
                uri: "/write?db=d", method: .post, headers: [.authorization: "Bearer \(admin)"], body: ByteBuffer(string: body))
            #expect(v1.status == .badRequest)
            #expect(
                try v1.decode([String: String].self)["error"]
                    == "partial write: unable to parse line 2 ('cpu,host=a usage=oops'): 'oops' is not a number, integer, boolean or string; "
                    + "line 4 ('cpu,host=a'): the line has no fields dropped=2")
            #expect(try await Self.history(client, "cpu.usage", admin: admin) == [1, 2])
            let v2 = try await client.executeRequest(
                uri: "/api/v2/write?bucket=b", method: .post, headers: [.authorization: "Bearer \(admin)"], body: ByteBuffer(string: "x y=z"))
            #expect(v2.status == .badRequest)
            #expect(try v2.decode([String: String].self)["code"] == "invalid")
        }
    }

    @Test func requestsClientsMightGetWrongAreRefusedWithTheReason() async throws {
        try await TestApp.run { client, _ in
            let admin = try await client.login().accessToken
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let body = ByteBuffer(string: Self.lines([1]))
            let cases: [(String, HTTPResponse.Status, String)] = [
                ("/write", .badRequest, "database is required"),
                ("/api/v2/write?org=o", .badRequest, "bucket is required"),
                ("/write?db=d&precision=ps", .badRequest, "precision is one of ns (or n), us (or u), ms, s, m, h"),
            ]
            for (uri, status, message) in cases {
                let response = try await client.executeRequest(uri: uri, method: .post, headers: auth, body: body)
                #expect(response.status == status, "\(uri)")
                #expect(response.text.contains(message), "\(uri): \(response.text)")
            }
            // Seconds, as the 1.x client sends with precision="s".
            let seconds = try await client.executeRequest(
                uri: "/write?db=d&precision=s", method: .post, headers: auth, body: ByteBuffer(string: "s,host=a v=5 1767225600"))
            #expect(seconds.status == .noContent)
            #expect(try await Self.history(client, "s.v", admin: admin) == [5])
        }
    }

    /// Telegraf gzips its bodies; the limit holds for the body as sent and once decompressed, and
    /// Telegraf splits a batch that gets a 413.
    @Test func gzippedBodiesAreReadAndBoundedAfterDecompression() async throws {
        try await TestApp.run(configure: { $0.maxBodyBytes = 100_000 }) { client, _ in
            let admin = try await client.login().accessToken
            var headers: HTTPFields = [.authorization: "Token \(admin)", .contentEncoding: "gzip"]
            var plain = ByteBuffer(string: Self.lines([1, 2, 3]))
            let gzipped = try plain.compress(with: .gzip())
            #expect(try await client.executeRequest(uri: "/api/v2/write?bucket=b", method: .post, headers: headers, body: gzipped).status == .noContent)
            #expect(try await Self.history(client, "cpu.usage", admin: admin) == [1, 2, 3])

            // 10 MB of one repeated comment line: about 10 KB gzipped, far over the limit inflated.
            var bomb = ByteBuffer(string: String(repeating: "# nothing to see here, only a comment line\n", count: 250_000))
            let compressed = try bomb.compress(with: .gzip())
            #expect(compressed.readableBytes < 100_000)
            let inflated = try await client.executeRequest(uri: "/api/v2/write?bucket=b", method: .post, headers: headers, body: compressed)
            #expect(inflated.status == .contentTooLarge)
            #expect(try inflated.decode([String: String].self)["code"] == "request too large")

            let notGzip = try await client.executeRequest(uri: "/api/v2/write?bucket=b", method: .post, headers: headers, body: ByteBuffer(string: "cpu v=1"))
            #expect(notGzip.status == .badRequest)
            headers[.contentEncoding] = "br"
            let brotli = try await client.executeRequest(uri: "/api/v2/write?bucket=b", method: .post, headers: headers, body: ByteBuffer(string: "cpu v=1"))
            #expect(brotli.status == .unsupportedMediaType)

            headers[.contentEncoding] = nil
            let large = try await client.executeRequest(
                uri: "/write?db=d", method: .post, headers: headers, body: ByteBuffer(string: String(repeating: "x", count: 100_001)))
            #expect(large.status == .contentTooLarge)
            #expect(try large.decode([String: String].self)["error"] == "The body is larger than 100000 bytes.")
        }
    }

    @Test func aBatchOverThePointLimitIsRefusedWhole() async throws {
        try await TestApp.run(configure: { $0.maxBatchPoints = 10 }) { client, _ in
            let admin = try await client.login().accessToken
            let response = try await client.executeRequest(
                uri: "/api/v2/write?bucket=b", method: .post, headers: [.authorization: "Token \(admin)"],
                body: ByteBuffer(string: Self.lines((0..<11).map(Double.init))))
            #expect(response.status == .contentTooLarge)
            #expect(try await Self.history(client, "cpu.usage", admin: admin).isEmpty)
        }
    }

    /// A client that did not get the answer sends the same body again: when its lines carry
    /// their timestamps it is the same points, stored once; without timestamps each is new.
    @Test(arguments: TestEngine.all) func aRetriedBodyIsStoredOnce(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let auth: HTTPFields = [.authorization: "Token \(admin)"]
            for _ in 0..<2 {
                let response = try await client.executeRequest(
                    uri: "/api/v2/write?bucket=b", method: .post, headers: auth, body: ByteBuffer(string: Self.lines([7, 8])))
                #expect(response.status == .noContent)
            }
            #expect(try await Self.history(client, "cpu.usage", admin: admin) == [7, 8])
            for _ in 0..<2 {
                #expect(
                    try await client.executeRequest(uri: "/api/v2/write?bucket=b", method: .post, headers: auth, body: ByteBuffer(string: "now v=1"))
                        .status == .noContent)
            }
            let series = try await client.request(.get, "/api/v1/series", token: admin)
            #expect(series.text.contains(#""name":"now.v""#) && series.text.contains(#""storedPoints":2"#))
        }
    }

    @Test func pingAndCreateDatabaseAnswerAsInfluxDB() async throws {
        try await TestApp.run { client, _ in
            let admin = try await client.login().accessToken
            let ping = try await client.executeRequest(uri: "/ping", method: .get, headers: [:], body: nil)
            #expect(ping.status == .noContent)
            #expect(ping.headers[HTTPField.Name("X-Influxdb-Version")!] == "pulseboard")

            // The 1.x client puts the statement in the query string, Telegraf in a form.
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let inURL = try await client.executeRequest(uri: "/query?q=CREATE+DATABASE+%22telegraf%22", method: .post, headers: auth, body: nil)
            #expect(inURL.status == .ok)
            #expect(inURL.text == #"{"results":[{"statement_id":0}]}"#)
            var form = auth
            form[.contentType] = "application/x-www-form-urlencoded"
            let inForm = try await client.executeRequest(
                uri: "/query", method: .post, headers: form, body: ByteBuffer(string: "q=CREATE+DATABASE+%22telegraf%22"))
            #expect(inForm.status == .ok)
            let select = try await client.executeRequest(uri: "/query?q=SELECT+*+FROM+cpu", method: .post, headers: auth, body: nil)
            #expect(select.status == .badRequest)
            #expect(try select.decode([String: String].self)["error"]?.contains("/prometheus") == true)
            let anonymous = try await client.executeRequest(uri: "/query?q=CREATE+DATABASE+x", method: .post, headers: [:], body: nil)
            #expect(anonymous.status == .unauthorized)
        }
    }

    /// Backpressure keeps its status and Retry-After in InfluxDB's shape, which Telegraf reads.
    @Test func aFullWriterIsA503WithRetryAfter() async throws {
        let response = try await InfluxErrors.answer(.v2) { throw APIError.unavailable(retryAfter: 1, "The write queue is full; retry shortly.") }
        #expect(response.status == .serviceUnavailable)
        #expect(response.headers[.retryAfter] == "1")
    }
}
