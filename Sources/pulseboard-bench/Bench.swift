import ArgumentParser
import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import PulseboardAccounts
import PulseboardApp
import PulseboardCourses
import PulseboardDatabase
import PulseboardKernel
import PulseboardMetrics
import ServiceLifecycle

/// Starts a Pulseboard on a temporary database and measures it over loopback: durable ingest,
/// live delivery to many WebSocket subscribers, and downsampled history over millions of points.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pulseboard-bench",
        abstract: "Benchmark a Pulseboard server (build with -c release)."
    )

    @Option(help: "Seconds per ingest run.") var seconds: Double = 10
    @Option(help: "Concurrent HTTP connections for ingest.") var connections: Int = 32
    @Option(parsing: .upToNextOption, help: "Batch sizes to measure.") var batchSizes: [Int] = [100, 1000]
    @Option(help: "WebSocket subscribers for the live delivery run.") var subscribers: Int = 1000
    @Option(help: "Points published during the live delivery run.") var livePoints: Int = 200
    @Option(help: "Points stored for the history run.") var historyPoints: Int = 10_000_000
    @Option(help: "History queries to time.") var historyQueries: Int = 200
    @Option(help: "Port of the benchmarked server.") var port: Int = 18_080
    @Option(help: "postgres://… to benchmark the PostgreSQL engine (an empty database); default SQLite in a temporary folder.")
    var databaseURL: String?
    @Option(
        parsing: .upToNextOption,
        help:
            "Runs: ingest, live, history, events (learning events ingest), class (simulated class + live view), access (the per-request user check), sockets (server memory per idle WebSocket, in its own process)."
    )
    var runs: [String] = ["ingest", "live", "history", "events", "class", "access", "sockets"]
    @Option(help: "Idle WebSockets opened in the sockets run.") var sockets: Int = 10_000
    @Option(help: "Simulated students in the class run.") var students: Int = 200
    @Option(help: "Seconds of the class run.") var classSeconds: Double = 30

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var config = ServerConfig()
        config.dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-bench-\(UUID().uuidString)").path
        config.port = port
        config.hostMetrics = false
        config.adminPassword = "bench-admin-password"
        config.bcryptCost = 10
        config.sendQueueMessages = 4096
        config.databaseURL = databaseURL
        defer { try? FileManager.default.removeItem(atPath: config.dataDirectory) }

        let pulseboard = try await Pulseboard.build(config, logger: logger)
        var applications: [any Service] = [pulseboard.application]
        // With PostgreSQL a second instance on the same database receives the live data.
        var second: Pulseboard?
        if databaseURL != nil {
            var secondConfig = config
            secondConfig.port = port + 1
            second = try await Pulseboard.build(secondConfig, logger: logger)
            applications.append(second!.application)
        }
        let services = ServiceGroup(services: applications, gracefulShutdownSignals: [], logger: logger)
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections))
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let base = "http://127.0.0.1:\(port)"
            try await waitForHealth(http, base)
            print("Pulseboard benchmark on \(databaseURL == nil ? "SQLite" : "PostgreSQL") — \(machineDescription())")
            print("Idle server process RSS after start: \(residentMegabytes()) MB (bench client in the same process, before any load)\n")

            let (_, ingestToken) = try await UserAdministration.createIngestToken(name: "bench", in: pulseboard.store)
            if runs.contains("ingest") {
                print("| ingest | points/s (durable) | ack p50 | ack p99 | NOTIFY/s |")
                print("|---|---|---|---|---|")
            }
            for batch in batchSizes where runs.contains("ingest") {
                let notifiedBefore = pulseboard.telemetry.liveNotificationsSent
                let result = try await ingest(http, base, token: ingestToken, batch: batch)
                let notifyRate = Double(pulseboard.telemetry.liveNotificationsSent - notifiedBefore) / seconds
                print(
                    "| batch \(batch), \(connections) connections | \(Int(result.pointsPerSecond)) | \(ms(result.p50)) | \(ms(result.p99)) | \(databaseURL == nil ? "—" : String(Int(notifyRate))) |"
                )
            }

            if runs.contains("live") {
                print("\n| live delivery | subscribers | messages received | p50 | p99 |")
                print("|---|---|---|---|---|")
                let live = try await liveDelivery(http, ingestBase: base, subscribePort: port, token: ingestToken)
                print("| ingest → WebSocket, same instance | \(subscribers) | \(live.count) | \(ms(live.p50)) | \(ms(live.p99)) |")
                if second != nil {
                    let cross = try await liveDelivery(http, ingestBase: base, subscribePort: port + 1, token: ingestToken)
                    print("| ingest on A → WebSocket on B | \(subscribers) | \(cross.count) | \(ms(cross.p50)) | \(ms(cross.p99)) |")
                }
            }

            if runs.contains("history") {
                let history = try await historyQuery(http, base, store: pulseboard.metrics)
                print("\n| history query (\(historyPoints) points stored, maxPoints=1000) | p50 | p95 |")
                print("|---|---|---|")
                print("| random ranges from 1 h to the whole series | \(ms(history.p50)) | \(ms(history.p95)) |")
            }

            if runs.contains("class") {
                let (course, classToken) = try await ClassAdministration.create(
                    name: "Bench class", code: "bench-class", description: "", ownerEmail: "admin@example.com", in: pulseboard.store)
                let run = try await classLive(
                    http, base, classID: course.id, classToken: classToken, students: students, interval: 2, duration: classSeconds)
                print("\n| simulated class, instructor view open | events sent | updates received | event → view p50 | p99 | process CPU |")
                print("|---|---|---|---|---|---|")
                print(
                    "| \(students) students, one action each every 2 s, \(Int(classSeconds)) s | \(run.events) | \(run.latencies.count) | \(ms(run.latencies.p50)) | \(ms(run.latencies.p99)) | \(Int(run.cpuPercent)) % of one core |"
                )
            }
            if runs.contains("events") {
                let (_, classToken) = try await ClassAdministration.create(
                    name: "Bench events", code: "bench-events", description: "", ownerEmail: "admin@example.com", in: pulseboard.store)
                print("\n| learning events ingest | events/s (durable) | ack p50 | ack p99 | all applied to the class picture after |")
                print("|---|---|---|---|---|")
                let clock = ContinuousClock()
                let start = clock.now
                let events = try await eventIngest(http, base, classToken: classToken, batch: 100)
                let unprocessed = SQLStatement("SELECT COUNT(*) FROM events_unapplied")
                while try await pulseboard.store.select(unprocessed).first?.first?.int != 0 { try await Task.sleep(for: .milliseconds(100)) }
                print(
                    "| batch 100, \(connections) connections | \(Int(events.pointsPerSecond)) | \(ms(events.p50)) | \(ms(events.p99)) | \(String(format: "%.1f", (clock.now - start).seconds)) s (ingest ran \(Int(seconds)) s) |"
                )
            }

            if runs.contains("access") {
                // What revocation that takes effect at once costs: every request with an access
                // token needs its user as the database has them (from 32 tasks at once, as
                // requests would): read by primary key, or from the memory that every access
                // change empties (RecentUsers, 2 s at most, as the server runs it).
                let accounts = Accounts(store: pulseboard.store)
                let recent = RecentUsers(lifetime: .seconds(2))
                print("\n| per-request user check (revocation) | checks/s | mean wall time per check, \(connections) at once |")
                print("|---|---|---|")
                func measure(_ name: String, lookups: Int, _ check: @escaping @Sendable () async throws -> User?) async throws {
                    let clock = ContinuousClock()
                    let start = clock.now
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for task in 0..<connections {
                            group.addTask { for _ in stride(from: task, to: lookups, by: connections) { _ = try await check() } }
                        }
                        try await group.waitForAll()
                    }
                    let elapsed = (clock.now - start).seconds
                    print(
                        "| \(name) | \(Int(Double(lookups) / elapsed)) | \(String(format: "%.1f", elapsed / Double(lookups) * Double(connections) * 1e6)) µs |")
                }
                try await measure("primary-key read of the user", lookups: 20_000) { try await accounts.user(id: 1) }
                try await measure("from RecentUsers, emptied on every access change", lookups: 2_000_000) {
                    try await recent.user(id: 1) { try await accounts.user(id: 1) }
                }
            }

            print("\nRSS after the runs: \(residentMegabytes()) MB")

            if runs.contains("sockets") {
                let memory = try await socketMemory(http, sockets: sockets)
                print(
                    "\n| idle WebSockets (server in its own process) | RSS before | with them open | per socket | 12 s after they closed | after a second wave | still open then |"
                )
                print("|---|---|---|---|---|---|---|")
                print(
                    "| \(memory.sockets) authenticated, subscribed to `broadcast` | \(memory.beforeKB / 1024) MB | \(memory.duringKB / 1024) MB | \(String(format: "%.1f", memory.perSocketKB)) KiB | \(memory.afterFirstKB / 1024) MB | \(memory.afterKB / 1024) MB | \(memory.openAfter) |"
                )
            }

            await services.triggerGracefulShutdown()
            try await http.shutdown()
            try await group.waitForAll()
        }
    }

    // MARK: Ingest

    struct Latencies {
        var samples: [Double]
        var pointsPerSecond = 0.0

        func percentile(_ p: Double) -> Double {
            guard !samples.isEmpty else { return .nan }
            let sorted = samples.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }

        var p50: Double { percentile(0.5) }
        var p95: Double { percentile(0.95) }
        var p99: Double { percentile(0.99) }
        var count: Int { samples.count }
    }

    func ingest(_ http: HTTPClient, _ base: String, token: String, batch: Int) async throws -> Latencies {
        let now = Date().timeIntervalSince1970
        let body =
            "["
            + (0..<batch).map { #"{"name":"bench.ingest","value":\#($0),"timestamp":"\#(iso(now - Double($0) / 1000))","tags":{"host":"h\#($0 % 8)"}}"# }
            .joined(separator: ",") + "]"
        let buffer = ByteBuffer(string: body)
        return try await sustainedPosts(http, itemsPerRequest: batch) { _, _ in
            var request = HTTPClientRequest(url: base + "/api/v1/metrics")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.body = .bytes(buffer)
            return request
        }
    }

    /// Posts for `seconds` from `connections` connections, one request after another on each
    /// (`makeRequest` gets the connection and its request number), and times the answers, which
    /// must be 200. The rate is `itemsPerRequest` items per answered request.
    func sustainedPosts(
        _ http: HTTPClient, itemsPerRequest: Int, makeRequest: @escaping @Sendable (_ connection: Int, _ sequence: Int) -> HTTPClientRequest
    ) async throws -> Latencies {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for connection in 0..<connections {
                group.addTask {
                    var samples: [Double] = []
                    var sequence = 0
                    while ContinuousClock.now < deadline {
                        var request = makeRequest(connection, sequence)
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        sequence += 1
                        let sent = clock.now
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        guard response.status == .ok else { throw ValidationError("\(request.url.prefix { $0 != "?" }) answered \(response.status)") }
                        samples.append((clock.now - sent).seconds)
                    }
                    return samples
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        var result = Latencies(samples: latencies)
        result.pointsPerSecond = Double(latencies.count * itemsPerRequest) / (clock.now - start).seconds
        return result
    }

    // MARK: Live delivery

    func liveDelivery(_ http: HTTPClient, ingestBase base: String, subscribePort: Int, token: String) async throws -> Latencies {
        let accessToken = try await login(http, base)
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let channel = "bench.live.\(subscribePort)"
        let (received, receivedContinuation) = AsyncStream<[Double]>.makeStream()
        let wsURL = "ws://127.0.0.1:\(subscribePort)/ws"
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        let logger = Logger(label: "bench-ws")
        let expected = livePoints
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<subscribers {
                group.addTask {
                    try await WebSocketClient.connect(url: wsURL, configuration: configuration, logger: logger) { inbound, outbound, _ in
                        try await outbound.write(.text(#"{"op":"auth","token":"\#(accessToken)"}"#))
                        try await outbound.write(.text(#"{"op":"subscribe","channel":"metrics:\#(channel)"}"#))
                        var samples: [Double] = []
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            guard case .text(let text) = message else { continue }
                            if text.contains(#""type":"subscribed""#) { readyContinuation.yield() }
                            guard text.contains(#""type":"data""#) else { continue }
                            let arrival = Date().timeIntervalSince1970
                            for sentAt in Self.values(in: text) { samples.append(arrival - sentAt) }
                            if samples.count >= expected { break }
                        }
                        receivedContinuation.yield(samples)
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                }
            }
            var subscribed = 0
            for await _ in ready {
                subscribed += 1
                if subscribed == subscribers { break }
            }
            // One point every 20 ms; each carries its send time as its value.
            for _ in 0..<livePoints {
                var request = HTTPClientRequest(url: base + "/api/v1/metrics")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .bytes(ByteBuffer(string: #"[{"name":"\#(channel)","value":\#(Date().timeIntervalSince1970)}]"#))
                let response = try await http.execute(request, timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 1 << 16)
                try await Task.sleep(for: .milliseconds(20))
            }
            var all: [Double] = []
            var finished = 0
            for await samples in received {
                all += samples
                finished += 1
                if finished == subscribers { break }
            }
            try await group.waitForAll()
            return Latencies(samples: all)
        }
    }

    static func values(in text: String) -> [Double] {
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let points = (object["data"] as? [String: Any])?["points"] as? [[String: Any]]
        else { return [] }
        return points.compactMap { $0["value"] as? Double }
    }

    // MARK: History

    func historyQuery(_ http: HTTPClient, _ base: String, store: any MetricsStore) async throws -> Latencies {
        let accessToken = try await login(http, base)
        let startMs: Int64 = 1_700_000_000_000
        let chunk = 100_000
        var stored = 0
        let clock = ContinuousClock()
        let loadStart = clock.now
        while stored < historyPoints {
            let count = min(chunk, historyPoints - stored)
            let points = (0..<count).map { i in
                let n = stored + i
                return MetricPoint(series: SeriesKey(name: "bench.history"), timestampMs: startMs + Int64(n) * 1000, value: sin(Double(n) / 3600) * 50 + 50)
            }
            _ = try await store.commit([IngestBatch(points: points)], now: Date())
            stored += count
        }
        print("\n(stored \(historyPoints) history points directly in \(String(format: "%.1f", (clock.now - loadStart).seconds)) s)")
        let endMs = startMs + Int64(historyPoints) * 1000
        var generator = SystemRandomNumberGenerator()
        var samples: [Double] = []
        for _ in 0..<historyQueries {
            let length = Int64.random(in: 3_600_000...(endMs - startMs), using: &generator)
            let from = Int64.random(in: startMs...(endMs - length), using: &generator)
            var request = HTTPClientRequest(
                url: base + "/api/v1/metrics?name=bench.history&from=\(iso(Double(from) / 1000))&to=\(iso(Double(from + length) / 1000))&maxPoints=1000")
            request.headers.add(name: "Authorization", value: "Bearer \(accessToken)")
            let sent = clock.now
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 24)
            samples.append((clock.now - sent).seconds)
            guard response.status == .ok, body.readableBytes > 100 else { throw ValidationError("history answered \(response.status)") }
        }
        return Latencies(samples: samples)
    }

    // MARK: Helpers

    func login(_ http: HTTPClient, _ base: String) async throws -> String {
        var request = HTTPClientRequest(url: base + "/auth/login")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: #"{"email":"admin@example.com","password":"bench-admin-password"}"#))
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        guard let token = object?["accessToken"] as? String else { throw ValidationError("login failed") }
        return token
    }

    func waitForHealth(_ http: HTTPClient, _ base: String) async throws {
        for _ in 0..<200 {
            if let response = try? await http.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(1)), response.status == .ok {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the server did not start")
    }

    func iso(_ seconds: Double) -> String {
        let formatter = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return Date(timeIntervalSince1970: seconds).formatted(formatter)
    }

    func ms(_ seconds: Double) -> String {
        String(format: "%.1f ms", seconds * 1000)
    }

    func residentMegabytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    func machineDescription() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces)
            ?? "unknown CPU"
        let memory = ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n").first ?? ""
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(model)), \(memory.replacingOccurrences(of: "  ", with: ""))"
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
