import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import PulseboardApp
@testable import PulseboardHTTP
@testable import PulseboardKernel
@testable import PulseboardMetrics

@Suite("Operations: health, Prometheus metrics, OpenAPI, request logs", .throwawayPostgres)
struct OperationsTests {
    @Test(arguments: TestEngine.all) func healthReportsTheDatabase(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            // Health allows the database 2 s: on a loaded CI machine the first answer may be late.
            try await waitUntil { try await client.request(.get, "/health").status == .ok }
            let health = try await client.request(.get, "/health")
            #expect(health.text.contains(#""status":"ok""#))
            #expect(health.text.contains(#""database":"ok""#))
            #expect(health.text.contains("listen") == (engine == .postgres))
        }
    }

    @Test(arguments: TestEngine.all) func prometheusMetricsCountRequestsIngestAndConnections(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            #expect(try await client.ingest(#"[{"name":"x","value":1},{"name":"x","value":2}]"#, token: admin).status == .ok)
            let metrics = try await client.request(.get, "/metrics")
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            for line in [
                #"http_requests_total{method="POST",route="/api/v1/metrics",status="200"} 1"#,
                #"http_request_duration_seconds_count{method="POST",route="/auth/login"} 1"#,
                "pulseboard_ingest_points_total 2",
                "pulseboard_ingest_batches_total 1",
                "pulseboard_writer_queue_points 0",
                "pulseboard_writer_commit_seconds_count 1",
                "pulseboard_websocket_connections",
                "pulseboard_websocket_dropped_clients_total 0",
            ] {
                #expect(metrics.text.contains(line), "missing: \(line)")
            }
        }
    }

    @Test(arguments: TestEngine.all) func everyResponseHasARequestIdAndSecurityHeaders(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            for path in ["/health", "/api/v1/users", "/no-such-route"] {
                let response = try await client.request(.get, path)
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] != nil)
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
            }
            let missing = try await client.request(.get, "/no-such-route")
            #expect(missing.status == .notFound)
            #expect(missing.error?.code == "not_found")
        }
    }

    /// The OpenAPI document and the router describe the same routes: a route without
    /// documentation, or documentation without a route, fails here.
    @Test func theOpenAPIDocumentCoversEveryRouteAndNothingElse() async throws {
        let document: [String: Any]? = try OpenAPIDocument.object()
        #expect(document?["openapi"] as? String == "3.1.0")
        let paths = try #require(document?["paths"] as? [String: [String: Any]])
        var documented = Set<RecordingRouter.Route>()
        for (path, item) in paths {
            for (method, operation) in item where ["get", "post", "put", "patch", "delete", "options"].contains(method) {
                documented.insert(.init(method: method.uppercased(), path: path))
                let responses = (operation as? [String: Any])?["responses"] as? [String: Any]
                #expect(responses?.isEmpty == false, "\(method) \(path) documents no responses")
                if QueryParameterCheck.isChecked(path), method != "options" {
                    #expect(responses?["400"] != nil, "\(method) \(path) does not document the 400 of an unknown query parameter")
                }
            }
        }
        // Every optional route switched on.
        let config = TestApp.config { $0.enableTestAPI = true }
        defer { try? FileManager.default.removeItem(atPath: config.dataDirectory) }
        let routes = Set(try await Pulseboard.build(config, logger: TestApp.logger).routes)
        #expect(routes.subtracting(documented).isEmpty, "routes missing from the document: \(routes.subtracting(documented))")
        #expect(documented.subtracting(routes).isEmpty, "documented routes that do not exist: \(documented.subtracting(routes))")
    }

    @Test(arguments: TestEngine.all) func theDocumentIsServed(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let response = try await client.request(.get, "/openapi.json")
            #expect(response.status == .ok)
            #expect(response.text.contains(#""openapi":"3.1.0""#))
        }
    }

    @Test func logLinesAreJSONWithoutSecrets() throws {
        // The JSON handler writes one object per line; the request logger never sees bodies or
        // query strings, so tokens and passwords have no way into the log.
        let line = try JSONLogHandler.render(label: "t", level: .info, message: "request", metadata: ["path": "/api/v1/events"])
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(object["message"] as? String == "request")
        #expect(object["path"] as? String == "/api/v1/events")
        #expect(object["level"] as? String == "info")
    }
}

@Suite("Host metrics collector", .throwawayPostgres)
struct CollectorTests {
    @Test func parsesProcFiles() throws {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n"
        #expect(try ProcSnapshot.parseCPU(stat) == .init(busy: 150, total: 1000))
        let meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n"
        #expect(try ProcSnapshot.parseMemoryUsedPercent(meminfo) == 75)
        #expect(try ProcSnapshot.parseLoad1("0.52 0.58 0.59 1/123 4567\n") == 0.52)
        let netdev = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0
              eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
            """
        #expect(ProcSnapshot.parseNetDev(netdev) == (1000, 2000))
        let diskstats = "   8       0 sda 10 0 100 0 20 0 200 0 0 0 0\n   8       1 sda1 10 0 100 0 20 0 200 0 0 0 0\n"
        #expect(ProcSnapshot.parseDiskStats(diskstats, wholeDisks: ["sda"]) == (51_200, 102_400))
        let before = ProcSnapshot(
            cpu: .init(busy: 100, total: 1000), memoryUsedPercent: 50, load1: 1, networkReceivedBytes: 0, networkSentBytes: 0, diskReadBytes: 0,
            diskWrittenBytes: 0)
        var after = before
        after.cpu = .init(busy: 150, total: 1100)
        after.networkReceivedBytes = 2000
        let values = Dictionary(uniqueKeysWithValues: after.values(since: before, seconds: 2).map { ($0.name, $0.value) })
        #expect(values["host.cpu"] == 50)
        #expect(values["host.net.rx"] == 1000)
    }

    @Test func readsThisHost() throws {
        let first = try ProcSnapshot.read()
        #expect(first.cpu.total > 0)
        #expect((0...100).contains(first.memoryUsedPercent))
        #expect(first.load1 >= 0)
    }

    @Test(arguments: TestEngine.all) func theCollectorStoresAndPublishesHostSeries(engine: TestEngine) async throws {
        try await TestApp.run(
            engine: engine,
            configure: {
                $0.hostMetrics = true
                $0.collectInterval = .milliseconds(100)
            }
        ) { client, parts in
            let admin = try await client.login().accessToken
            try await waitUntil { parts.hub.sequence(of: "metrics:host.cpu") >= 2 }
            let series = try await client.request(.get, "/api/v1/series", token: admin).text
            for name in [
                "host.cpu", "host.memory", "host.load1", "host.net.rx", "host.disk.write", "pulseboard.ingest.rate", "pulseboard.ws.connections",
                "pulseboard.writer.queue",
            ] {
                #expect(series.contains(#""name":"\#(name)""#), "missing \(name)")
            }
            // With PostgreSQL (several instances) host series carry the instance's name as a tag.
            let list = try await client.request(.get, "/api/v1/series", token: admin).decode(SeriesList.self)
            let cpu = try #require(list.series.first { $0.name == "host.cpu" })
            #expect(cpu.tags.isEmpty == (engine == .sqlite))
            let tags = cpu.tags.map { "\($0.key)=\($0.value)" }.joined(separator: ",").addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let answer = try await client.request(.get, "/api/v1/metrics?name=host.cpu&tags=\(tags)", token: admin).decode(HistoryTests.Answer.self)
            let history = try #require(answer.series.first { $0.tags == cpu.tags })
            #expect((history.points?.count ?? 0) >= 2)
            #expect(history.points?.allSatisfy { (0...100).contains($0.value) } == true)
        }
    }
}

struct SeriesList: Decodable {
    struct Series: Decodable {
        var name: String
        var tags: [String: String]
    }

    var series: [Series]
}
