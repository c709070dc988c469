import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SwiftProtobuf
import Testing

@testable import PulseboardKernel
@testable import PulseboardMetrics

/// `POST /prometheus/api/v1/write` with the bodies Prometheus sends (a snappy-compressed
/// protobuf WriteRequest) and the bad ones a sender might. The real Prometheus remote-writes
/// to a built server in `.ci/run` (scripts/agents_check.py).
@Suite("Prometheus remote write", .throwawayPostgres)
struct RemoteWriteTests {
    static let path = "/prometheus/api/v1/write"
    /// 2026-01-01T00:00:00Z.
    static let startMs: Int64 = 1_767_225_600_000
    /// The value of Prometheus's stale marker.
    static let staleNaN = Double(bitPattern: 0x7ff0_0000_0000_0002)

    static func series(_ labels: [(String, String)], _ samples: [(Int64, Double)]) -> Prometheus_TimeSeries {
        var series = Prometheus_TimeSeries()
        series.labels = labels.map { name, value in
            var label = Prometheus_Label()
            label.name = name
            label.value = value
            return label
        }
        series.samples = samples.map { timestamp, value in
            var sample = Prometheus_Sample()
            sample.timestamp = timestamp
            sample.value = value
            return sample
        }
        return series
    }

    static func body(_ series: [Prometheus_TimeSeries]) throws -> ByteBuffer {
        var request = Prometheus_WriteRequest()
        request.timeseries = series
        return ByteBuffer(data: Snappy.compress(try request.serializedBytes()))
    }

    /// The headers Prometheus sends.
    static func headers(_ token: String) -> HTTPFields {
        [
            .authorization: "Bearer \(token)", .contentEncoding: "snappy", .contentType: "application/x-protobuf",
            HTTPField.Name("X-Prometheus-Remote-Write-Version")!: "0.1.0",
        ]
    }

    static func values(_ client: some TestClientProtocol, _ name: String, tags: String = "", admin: String) async throws -> [String] {
        let response = try await client.request(
            .get, "/api/v1/metrics?name=\(name)&tags=\(tags)&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", token: admin)
        return try response.decode(History.self).series.flatMap { $0.points ?? [] }.map { "\($0.timestamp)=\($0.value)" }
    }

    struct History: Decodable {
        struct Series: Decodable {
            struct Point: Decodable {
                var timestamp: String
                var value: Double
            }
            var points: [Point]?
        }
        var series: [Series]
    }

    @Test(arguments: TestEngine.all) func samplesAreStoredAsSeriesOfTheirNameAndLabels(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let token = try await client.ingestToken(adminToken: admin).token
            let body = try Self.body([
                Self.series(
                    [("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("instance", "host:9100"), ("job", "node"), ("mode", "idle")],
                    [(Self.startMs, 1234.5), (Self.startMs + 15_000, 1249.25), (Self.startMs + 30_000, Self.staleNaN)]),
                Self.series([("__name__", "up"), ("instance", "host:9100"), ("job", "node")], [(Self.startMs, 1)]),
            ])
            let response = try await client.executeRequest(uri: Self.path, method: .post, headers: Self.headers(token), body: body)
            #expect(response.status == .noContent, "\(response.text)")
            #expect(
                try await Self.values(client, "node_cpu_seconds_total", tags: "mode=idle", admin: admin) == [
                    "2026-01-01T00:00:00.000Z=1234.5", "2026-01-01T00:00:15.000Z=1249.25",
                ])
            #expect(try await Self.values(client, "up", admin: admin) == ["2026-01-01T00:00:00.000Z=1.0"])
            #expect(String(decoding: parts.telemetry.registry.emitToBuffer(), as: UTF8.self).contains("pulseboard_remote_write_samples_skipped_total 1"))
            #expect(parts.hub.sequence(of: "metrics:up") == 1)
        }
    }

    @Test func onlyIngestTokensAndAdminsWrite() async throws {
        try await TestApp.run { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let body = try Self.body([Self.series([("__name__", "up")], [(Self.startMs, 1)])])
            var anonymous = Self.headers("")
            anonymous[.authorization] = nil
            #expect(try await client.executeRequest(uri: Self.path, method: .post, headers: anonymous, body: body).status == .unauthorized)
            #expect(try await client.executeRequest(uri: Self.path, method: .post, headers: Self.headers(instructor), body: body).status == .forbidden)
            #expect(try await Self.values(client, "up", admin: admin).isEmpty)
        }
    }

    @Test func malformedAndOversizedBodiesAreRefusedWithTheReason() async throws {
        try await TestApp.run(configure: { $0.maxBodyBytes = 10_000 }) { client, _ in
            let admin = try await client.login().accessToken
            let headers = Self.headers(admin)
            func post(_ body: ByteBuffer, headers: HTTPFields = headers) async throws -> TestResponse {
                try await client.executeRequest(uri: Self.path, method: .post, headers: headers, body: body)
            }
            let notSnappy = try await post(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
            #expect(notSnappy.status == .badRequest && notSnappy.error?.code == "malformed")
            let notProtobuf = try await post(ByteBuffer(data: Snappy.compress(Data([0x0A, 0xFF, 0x01, 0x02]))))
            #expect(notProtobuf.status == .badRequest && notProtobuf.error?.message.hasPrefix("The body is not a remote-write WriteRequest") == true)
            // A block that says it holds 4 GiB is refused before anything is allocated.
            let bomb = try await post(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00]))
            #expect(bomb.status == .contentTooLarge)
            let large = try await post(ByteBuffer(repeating: 0, count: 10_001))
            #expect(large.status == .contentTooLarge)
            var zstd = headers
            zstd[.contentEncoding] = "zstd"
            #expect(try await post(try Self.body([]), headers: zstd).status == .unsupportedMediaType)
            // An empty request is a valid one.
            #expect(try await post(try Self.body([])).status == .noContent)
        }
    }

    /// A series that cannot be stored is named in the 400; the rest of the request is stored,
    /// since Prometheus does not send a 400 again.
    @Test(arguments: TestEngine.all) func aSeriesThatCannotBeStoredIsNamedAndTheOthersStored(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let manyLabels = [("__name__", "wide")] + (0..<17).map { ("l\($0)", "v") }
            let body = try Self.body([
                Self.series(manyLabels, [(Self.startMs, 1)]),
                Self.series([("job", "nameless")], [(Self.startMs, 2)]),
                Self.series([("__name__", "kept")], [(Self.startMs, 3)]),
            ])
            let response = try await client.executeRequest(uri: Self.path, method: .post, headers: Self.headers(admin), body: body)
            #expect(response.status == .badRequest)
            #expect(response.error?.message == "2 of 3 series refused (the others were stored); the first: wide: at most 16 tags.")
            #expect(try await Self.values(client, "kept", admin: admin) == ["2026-01-01T00:00:00.000Z=3.0"])
        }
    }

    /// Prometheus retries a failed send with the same bytes: stored once.
    @Test(arguments: TestEngine.all) func aRetriedRequestIsStoredOnce(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let body = try Self.body([Self.series([("__name__", "retried")], [(Self.startMs, 1), (Self.startMs + 1000, 2)])])
            for _ in 0..<3 {
                #expect(try await client.executeRequest(uri: Self.path, method: .post, headers: Self.headers(admin), body: body).status == .noContent)
            }
            #expect(try await Self.values(client, "retried", admin: admin).count == 2)
        }
    }
}
