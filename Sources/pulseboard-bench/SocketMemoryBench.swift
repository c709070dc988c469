import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import PulseboardKernel
import Synchronization

/// Memory per idle WebSocket, and whether it comes back when they close. The server runs in a
/// process of its own (the `pulseboard` binary next to this one), so that its resident set is
/// the server's alone and not the clients'.
extension Bench {
    struct SocketMemory {
        var beforeKB: Int
        var duringKB: Int
        var afterFirstKB: Int
        var afterKB: Int
        var sockets: Int
        /// The server's own count of open WebSockets after they closed (should be 0).
        var openAfter: Int
        var perSocketKB: Double { Double(duringKB - beforeKB) / Double(sockets) }
    }

    func socketMemory(_ http: HTTPClient, sockets: Int) async throws -> SocketMemory {
        let port = self.port + 10
        let base = "http://127.0.0.1:\(port)"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-bench-sockets-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("pulseboard")
        server.arguments = [
            "serve", "--port", String(port), "--data-dir", directory, "--no-host-metrics", "--log-level", "warning",
            "--max-connections", String(sockets + 1_000), "--max-connections-per-address", String(sockets + 1_000),
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["PULSEBOARD_ADMIN_PASSWORD"] = "bench-admin-password"
        environment["PULSEBOARD_BCRYPT_COST"] = "10"
        server.environment = environment
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        try await waitForHealth(http, base)
        let token = try await login(http, base)
        try await Task.sleep(for: .seconds(2))
        let before = Self.residentKB(of: server.processIdentifier)

        var during = 0
        var afterFirst = 0
        // Twice: memory that a second wave needs again beyond the first means a leak; memory kept
        // after the first but reused by the second is the allocator's.
        for round in 1...2 {
            let release = Gate()
            let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
            let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 16)
            let logger = Logger(label: "bench-sockets")
            let url = "ws://127.0.0.1:\(port)/ws"
            try await withThrowingTaskGroup(of: Void.self) { group in
                var readyCount = 0
                var readyIterator = ready.makeAsyncIterator()
                // In waves of 500, so that the listen backlog never overflows.
                for wave in stride(from: 0, to: sockets, by: 500) {
                    for _ in wave..<min(wave + 500, sockets) {
                        group.addTask {
                            try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                                try await outbound.write(.text(#"{"op":"auth","token":"\#(token)"}"#))
                                try await outbound.write(.text(#"{"op":"subscribe","channel":"broadcast"}"#))
                                for try await message in inbound.messages(maxSize: 1 << 16) {
                                    guard case .text(let text) = message, text.contains(#""type":"subscribed""#) else { continue }
                                    readyContinuation.yield()
                                    break
                                }
                                await release.wait()
                                try await outbound.close(.normalClosure, reason: nil)
                            }
                        }
                    }
                    while readyCount < min(wave + 500, sockets), await readyIterator.next() != nil { readyCount += 1 }
                }
                try await Task.sleep(for: .seconds(2))
                if round == 1 { during = Self.residentKB(of: server.processIdentifier) }
                release.open()
                try await group.waitForAll()
            }
            // The server returns freed memory every 10 s.
            try await Task.sleep(for: .seconds(12))
            if round == 1 { afterFirst = Self.residentKB(of: server.processIdentifier) }
        }
        let metrics = try await http.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(10)).body.collect(upTo: 1 << 20)
        let stillOpen = String(buffer: metrics).split(separator: "\n").first { $0.hasPrefix("pulseboard_websocket_connections ") }
        return SocketMemory(
            beforeKB: before, duringKB: during, afterFirstKB: afterFirst, afterKB: Self.residentKB(of: server.processIdentifier), sockets: sockets,
            openAfter: stillOpen.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? -1)
    }

    static func residentKB(of pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
}

/// Tasks wait at the gate until it opens.
final class Gate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.isOpen { return true }
                state.waiting.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}
