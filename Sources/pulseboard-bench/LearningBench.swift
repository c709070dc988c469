import ArgumentParser
import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import PulseboardClassroom
import PulseboardKernel

/// The learning-event runs: raw event ingest, and a simulated class with the instructor's view open.
extension Bench {
    /// Events in the extension's format, `batch` per request from `connections` connections, each
    /// with a new eventId: durable events per second.
    func eventIngest(_ http: HTTPClient, _ base: String, classToken: String, batch: Int) async throws -> Latencies {
        try await sustainedPosts(http, itemsPerRequest: batch) { connection, sequence in
            let time = iso(Date().timeIntervalSince1970)
            let events = (0..<batch).map { index in
                let student = (connection * batch + index) % 200
                return
                    #"{"eventId":"bench-\#(connection)-\#(sequence)-\#(index)","eventType":"cell_executed","eventTime":"\#(time)","emailAddress":"student\#(student)@example.com","userName":"Student \#(student)","teamName":"team-\#(student % 10)","sessionId":"s\#(student)","notebookPath":"week1/intro.ipynb","cellId":"c\#(index % 40)","cellIndex":\#(index % 40),"cellType":"code","code":"x = \#(index)","executionCount":\#(sequence),"hasError":false,"executionDurationMs":12.5}"#
            }
            var request = HTTPClientRequest(url: base + "/api/v1/events?token=\(classToken)")
            request.body = .bytes(ByteBuffer(string: "[" + events.joined(separator: ",") + "]"))
            return request
        }
    }

    /// `students` simulated students, each acting every `interval` (±50 %), one request per action,
    /// while one WebSocket client follows `class:<id>` as the instructor's page does. Latency is
    /// from the event's time (set when it is sent) to the student's update arriving on the socket.
    func classLive(
        _ http: HTTPClient, _ base: String, classID: Int64, classToken: String, students: Int, interval: Double, duration: Double
    ) async throws -> (latencies: Latencies, events: Int, cpuPercent: Double) {
        let accessToken = try await login(http, base)
        let simulator = SimulatedClass(ClassSimulator(students: students, teams: 10, seed: 7))
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let logger = Logger(label: "bench-class")
        let deadline = ContinuousClock.now + .milliseconds(Int(duration * 1000))
        let cpuBefore = processCPUSeconds()
        let wallStart = ContinuousClock.now
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            let (received, receivedContinuation) = AsyncStream<[Double]>.makeStream()
            group.addTask {
                try await WebSocketClient.connect(
                    url: "ws://127.0.0.1:\(port)/ws", configuration: .init(maxFrameSize: 1 << 20), logger: logger
                ) { inbound, outbound, _ in
                    try await outbound.write(.text(#"{"op":"auth","token":"\#(accessToken)"}"#))
                    try await outbound.write(.text(#"{"op":"subscribe","channel":"class:\#(classID)"}"#))
                    // A ping after the run makes sure a message arrives to end the loop on.
                    let stopper = Task {
                        try await Task.sleep(until: deadline + .seconds(2))
                        try await outbound.write(.text(#"{"op":"ping"}"#))
                    }
                    var samples: [Double] = []
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message else { continue }
                        if text.contains(#""type":"subscribed""#) { readyContinuation.yield() }
                        if let sent = Self.lastActivity(in: text) { samples.append(Date().timeIntervalSince1970 - sent) }
                        if ContinuousClock.now > deadline + .seconds(2) { break }
                    }
                    _ = try await stopper.value
                    receivedContinuation.yield(samples)
                    try await outbound.close(.normalClosure, reason: nil)
                }
                for await samples in received { return samples }
                return []
            }
            for await _ in ready { break }
            for index in 0..<students {
                group.addTask {
                    var random = SystemRandomNumberGenerator()
                    while ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(Int(interval * 1000 * Double.random(in: 0.5...1.5, using: &random))))
                        let events = simulator.step(index)
                        guard !events.isEmpty else { continue }
                        var request = HTTPClientRequest(url: base + "/api/v1/events?token=\(classToken)")
                        request.method = .POST
                        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: events)))
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        guard response.status == .ok else { throw ValidationError("class ingest answered \(response.status)") }
                        simulator.count(events.count)
                    }
                    return []
                }
            }
            var samples: [Double] = []
            for try await part in group { samples += part }
            let cpu = (processCPUSeconds() - cpuBefore) / (ContinuousClock.now - wallStart).seconds * 100
            return (Latencies(samples: samples), simulator.sent, cpu)
        }
    }

    /// The `lastActivity` of a student update, in seconds since the epoch.
    static func lastActivity(in text: String) -> Double? {
        guard text.contains(#""kind":"student""#), let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let student = (object["data"] as? [String: Any])?["student"] as? [String: Any], let time = student["lastActivity"] as? String,
            let date = try? Date(time, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        else { return nil }
        return date.timeIntervalSince1970
    }

    /// CPU time (user + system) of this process, which holds the server and the load.
    func processCPUSeconds() -> Double {
        let stat = (try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// The simulated class, shared by the students' tasks.
final class SimulatedClass: @unchecked Sendable {
    // @unchecked: every access goes through the lock.
    private let lock = NSLock()
    private var simulator: ClassSimulator
    private var events = 0

    init(_ simulator: ClassSimulator) {
        self.simulator = simulator
    }

    func step(_ student: Int) -> [[String: Any]] {
        lock.withLock { simulator.step(student: student, now: Date()) }
    }

    func count(_ sent: Int) {
        lock.withLock { events += sent }
    }

    var sent: Int { lock.withLock { events } }
}
