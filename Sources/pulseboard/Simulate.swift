import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import PulseboardClassroom
import PulseboardKernel
import Synchronization

/// `pulseboard simulate`: plays a class of JupyterLab users against a server, posting exactly
/// what the cell-monitor extension posts, one request per student action, as the extension does.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play a simulated class of JupyterLab users against a server (for demos, load and the benchmark).",
        discussion: "Example: pulseboard simulate --url http://127.0.0.1:8080 --token pbc_… --students 200 --teams 10"
    )

    @Option(help: "The server (http://host:port) or a full serverUrl (…/api/v1/events?token=…).") var url: String
    @Option(help: "The class's ingest token (not needed when --url has it, or the server runs with --open-ingest).") var token: String?
    @Option(help: "Students in the class.") var students = 30
    @Option(help: "Teams the students are spread over.") var teams = 5
    @Option(help: "Seconds between one student's actions (each wait varies by ±50 %).") var interval = 2.0
    @Option(help: "Seconds to run; 0 runs until interrupted.") var duration = 0.0
    @Option(help: "Seed of the simulated class (the same seed plays the same class).") var seed: UInt64 = 2026

    func validate() throws {
        guard students > 0, teams > 0, interval > 0, duration >= 0 else {
            throw ValidationError("students and teams are at least 1, interval above 0, duration 0 or more.")
        }
    }

    func run() async throws {
        var target = url.contains("/api/v1/events") ? url : url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/v1/events"
        if let token { target += (target.contains("?") ? "&" : "?") + "token=" + token }
        let play = Playback(ClassSimulator(students: students, teams: teams, seed: seed))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let deadline = duration > 0 ? ContinuousClock.now + .milliseconds(Int(duration * 1000)) : nil
        print(
            "Simulating \(students) students in \(teams) teams against \(target.replacingOccurrences(of: #"token=[^&]+"#, with: "token=…", options: .regularExpression))"
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            let (interval, target) = (interval, target)
            for index in 0..<students {
                group.addTask {
                    var random = SystemRandomNumberGenerator()
                    while deadline.map({ ContinuousClock.now < $0 }) ?? true {
                        try await Task.sleep(for: .milliseconds(Int(interval * 1000 * Double.random(in: 0.5...1.5, using: &random))))
                        let events = play.simulator.withLock { $0.step(student: index, now: Date()) }
                        guard !events.isEmpty else { continue }
                        await Self.post(events, to: target, http: http, play: play)
                    }
                }
            }
            group.addTask {
                var seconds = 0
                while deadline.map({ ContinuousClock.now < $0 }) ?? true {
                    try await Task.sleep(for: .seconds(1))
                    seconds += 1
                    if seconds % 10 == 0 { print(play.stats.withLock { $0.line() }) }
                }
            }
            try await group.waitForAll()
        }
        print(play.stats.withLock { $0.line() })
        try await http.shutdown()
    }

    private static func post(_ events: [[String: Any]], to target: String, http: HTTPClient, play: Playback) async {
        var request = HTTPClientRequest(url: target)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: events)) ?? Data("[]".utf8)))
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 16)
            let elapsed = clock.now - start
            play.stats.withLock { $0.record(events: events.count, ok: response.status == .ok, elapsed: elapsed) }
            if response.status != .ok { print("The server answered \(response.status.code): \(String(buffer: body))") }
        } catch {
            play.stats.withLock { $0.record(events: events.count, ok: false, elapsed: clock.now - start) }
            print("Sending failed: \(error)")
        }
    }

    /// The simulated class and what was sent, shared by the students' tasks.
    final class Playback: Sendable {
        let simulator: Mutex<ClassSimulator>
        let stats = Mutex(Stats())

        init(_ simulator: ClassSimulator) {
            self.simulator = Mutex(simulator)
        }
    }

    struct Stats {
        var sent = 0
        var failed = 0
        var latencies: [Double] = []

        mutating func record(events: Int, ok: Bool, elapsed: Duration) {
            if ok { sent += events } else { failed += events }
            latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
        }

        func line() -> String {
            let sorted = latencies.sorted()
            let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            return "events delivered: \(sent), failed: \(failed), request p99: \(String(format: "%.1f", p99)) ms"
        }
    }
}
