import Foundation
import Logging
import PulseboardKernel
import ServiceLifecycle

/// Samples this host (from /proc) and the server itself every interval and ingests the values
/// through the writer like any other series, so the dashboard is live from the first second.
/// With `demo` it adds a few synthetic sensor series; by default nothing is random.
package struct HostCollector: Service {
    let writer: Writer
    let telemetry: Telemetry
    let interval: Duration
    let demo: Bool
    /// Tags of every host series (empty on one machine; the instance's name with several).
    let tags: [String: String]
    let logger: Logger

    package init(writer: Writer, telemetry: Telemetry, interval: Duration, demo: Bool, tags: [String: String], logger: Logger) {
        self.writer = writer
        self.telemetry = telemetry
        self.interval = interval
        self.demo = demo
        self.tags = tags
        self.logger = logger
    }

    package func run() async throws {
        var previous = try? ProcSnapshot.read()
        let clock = ContinuousClock()
        var last = clock.now
        while !Task.isCancelledOrShuttingDown {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            let now = clock.now
            let seconds = (now - last).seconds
            last = now
            var values: [(name: String, value: Double)] = [
                ("pulseboard.ingest.rate", Double(telemetry.takeCommittedPoints()) / seconds),
                ("pulseboard.ws.connections", Double(telemetry.currentWebSocketConnections)),
                ("pulseboard.writer.queue", Double(telemetry.currentQueuedPoints)),
            ]
            do {
                let snapshot = try ProcSnapshot.read()
                if let previous { values += snapshot.values(since: previous, seconds: seconds) }
                previous = snapshot
            } catch {
                logger.warning("Cannot read /proc", metadata: ["error": "\(error)"])
            }
            if demo { values += Self.demoValues(at: Date()) }
            let timestampMs = Date().millisecondsSince1970
            // Two decimals are more than any host figure means (0.01 % of CPU, 0.01 byte/s), and
            // they let the chunk codec store a value in about a byte instead of seven.
            let points = values.map {
                MetricPoint(series: SeriesKey(name: $0.name, tags: tags), timestampMs: timestampMs, value: ($0.value * 100).rounded() / 100)
            }
            do {
                _ = try await writer.submit(IngestBatch(points: points))
            } catch {
                logger.warning("Host metrics not stored", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Synthetic sensors for a demo: smooth waves with a little noise.
    static func demoValues(at date: Date) -> [(name: String, value: Double)] {
        let t = date.timeIntervalSince1970
        return [
            ("demo.sensor.temperature", 21 + 3 * sin(t / 300) + Double.random(in: -0.2...0.2)),
            ("demo.sensor.humidity", 45 + 10 * sin(t / 900 + 1) + Double.random(in: -0.5...0.5)),
        ]
    }
}
