import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import Logging
import Testing

@testable import PulseboardApp
@testable import PulseboardKernel
@testable import PulseboardLive
@testable import PulseboardMetrics
@testable import PulseboardSQLite

@Suite("Metrics ingest", .throwawayPostgres)
struct IngestTests {
    @Test(arguments: TestEngine.all) func aCommittedBatchIsInTheHistory(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let response = try await client.ingest(
                #"[{"name":"sensor.temp","value":21.5,"timestamp":"2026-01-01T00:00:00Z","tags":{"room":"a"}},{"name":"sensor.temp","value":22,"timestamp":"2026-01-01T00:00:01.500Z","tags":{"room":"a"}}]"#,
                token: admin
            )
            #expect(response.status == .ok)
            #expect(response.text == #"{"accepted":2,"duplicate":false}"#)
            let history = try await client.request(
                .get, "/api/v1/metrics?name=sensor.temp&tags=room=a&from=2026-01-01T00:00:00Z&to=2026-01-01T00:01:00Z", token: admin)
            #expect(history.status == .ok)
            #expect(history.text.contains(#"{"timestamp":"2026-01-01T00:00:00.000Z","value":21.5},{"timestamp":"2026-01-01T00:00:01.500Z","value":22}"#))
        }
    }

    @Test(arguments: TestEngine.all) func invalidBatchesNameTheItemAndField(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let future = Timestamp.format(Date().addingTimeInterval(7200))
            let cases: [(body: String, status: HTTPResponse.Status, index: Int?, field: String?)] = [
                ("{not json", .badRequest, nil, nil),
                (#"{"name":"x","value":1}"#, .badRequest, nil, nil),
                (#"[{"name":"ok","value":1},{"name":"x","value":"high"}]"#, .badRequest, 1, "value"),
                (#"[{"name":"x","value":1,"tags":{"a":1}}]"#, .badRequest, 0, "tags.a"),
                (#"[{"value":1}]"#, .badRequest, 0, "name"),
                (#"[{"name":"ok","value":1},{"name":"ok","value":2},{"name":"","value":1}]"#, .unprocessableContent, 2, "name"),
                (#"[{"name":"bad name!","value":1}]"#, .unprocessableContent, 0, "name"),
                (#"[{"name":"x","value":1e999}]"#, .badRequest, nil, nil),
                (#"[{"name":"x","value":1,"timestamp":"\#(future)"}]"#, .unprocessableContent, 0, "timestamp"),
                (#"[{"name":"x","value":1,"timestamp":"yesterday"}]"#, .unprocessableContent, 0, "timestamp"),
            ]
            for (body, status, index, field) in cases {
                let response = try await client.ingest(body, token: admin)
                #expect(response.status == status, "\(body)")
                #expect(response.error != nil, "\(body): \(response.text)")
                if let index { #expect(response.error?.index == index, "\(body): \(response.text)") }
                if let field { #expect(response.error?.field == field, "\(body): \(response.text)") }
            }
            // Nothing of a rejected batch was stored.
            let series = try await client.request(.get, "/api/v1/series", token: admin)
            #expect(!series.text.contains(#""name":"ok""#))
        }
    }

    @Test(arguments: TestEngine.all) func limitsAnswer413(engine: TestEngine) async throws {
        try await TestApp.run(
            engine: engine,
            configure: {
                $0.maxBatchPoints = 3
                $0.maxBodyBytes = 1000
            }
        ) { client, _ in
            let admin = try await client.login().accessToken
            let four = "[" + Array(repeating: #"{"name":"x","value":1}"#, count: 4).joined(separator: ",") + "]"
            let tooMany = try await client.ingest(four, token: admin)
            #expect(tooMany.status == .contentTooLarge)
            let huge = #"[{"name":"x","value":1,"tags":{"pad":""# + String(repeating: "a", count: 2000) + #""}}]"#
            let tooLarge = try await client.ingest(huge, token: admin)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.error?.code == "too_large")
        }
    }

    @Test(arguments: TestEngine.all) func onlyIngestTokensAndAdminsIngest(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let body = #"[{"name":"x","value":1}]"#
            #expect(try await client.ingest(body, token: instructor).status == .forbidden)
            #expect(try await client.request(.post, "/api/v1/metrics", json: body).status == .unauthorized)
            #expect(try await client.ingest(body, token: "pbi_not-a-token").status == .unauthorized)
        }
    }

    @Test(arguments: TestEngine.all) func aRetriedBatchWithItsIdempotencyKeyIsStoredOnce(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let body = #"[{"name":"once","value":1,"timestamp":"2026-01-01T00:00:00Z"},{"name":"once","value":2,"timestamp":"2026-01-01T00:00:01Z"}]"#
            let first = try await client.ingest(body, token: admin, idempotencyKey: "batch-1")
            let retry = try await client.ingest(body, token: admin, idempotencyKey: "batch-1")
            #expect(first.text == #"{"accepted":2,"duplicate":false}"#)
            #expect(retry.status == .ok)
            #expect(retry.text == #"{"accepted":2,"duplicate":true}"#)
            let other = try await client.ingest(body, token: admin, idempotencyKey: "batch-2")
            #expect(other.text.contains(#""duplicate":false"#))
            let history = try await client.request(
                .get, "/api/v1/metrics?name=once&from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:05Z", token: admin)
            #expect(history.text.components(separatedBy: "\"value\"").count - 1 == 4)
        }
    }
}

@Suite("Writer: group commit and backpressure", .throwawayPostgres)
struct WriterTests {
    @Test(arguments: TestEngine.all) func batchesOfOneCommitAreStoredInOrderAndIdempotencyHoldsWithinIt(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { _, parts in
            let outcomes = try await parts.metrics.commit(
                [
                    IngestBatch(points: [MetricPoint(series: SeriesKey(name: "a"), timestampMs: 1000, value: 1)], idempotencyKey: "k"),
                    IngestBatch(points: [MetricPoint(series: SeriesKey(name: "a"), timestampMs: 1000, value: 1)], idempotencyKey: "k"),
                    IngestBatch(points: [MetricPoint(series: SeriesKey(name: "a", tags: ["x": "1"]), timestampMs: 2000, value: 2)]),
                ],
                now: Date()
            )
            #expect(outcomes == [.stored(points: 1), .duplicate, .stored(points: 1)])
            let id = try #require(try await parts.metrics.seriesID(SeriesKey(name: "a")))
            #expect(try await parts.metrics.countPoints(seriesID: id, fromMs: 0, toMs: 10_000) == 1)
            let tagged = try #require(try await parts.metrics.seriesID(SeriesKey(name: "a", tags: ["x": "1"])))
            #expect(tagged != id)
        }
    }

    @Test func aFullQueueRefusesInsteadOfGrowing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-tests/\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let engine = try SQLiteEngine(path: directory + "/db.sqlite")
        try await engine.migrate(Migrations.all)
        let store = SQLiteMetricsStore(engine: engine)
        let telemetry = Telemetry()
        let writer = Writer(store: store, hub: Hub(ringCapacity: 8), telemetry: telemetry, logger: TestApp.logger, capacity: 10)
        // Another connection holds the write lock, so the writer's first commit waits.
        let blocker = try DatabaseQueue(path: directory + "/db.sqlite")
        let locked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? blocker.inTransaction(.immediate) { _ in
                locked.signal()
                release.wait()
                return .commit
            }
        }
        locked.wait()
        func batch(_ count: Int) -> IngestBatch {
            IngestBatch(points: (0..<count).map { MetricPoint(series: SeriesKey(name: "q"), timestampMs: Int64($0), value: 1) })
        }
        try await withThrowingTaskGroup(of: CommitOutcome?.self) { group in
            group.addTask { try await writer.submit(batch(5)) }
            try await waitUntil { telemetry.currentQueuedPoints == 5 }
            group.addTask {
                try await writer.run()
                return nil
            }
            // The writer took the first batch and is stuck committing it: the queue is empty again.
            try await waitUntil { telemetry.currentQueuedPoints == 0 }
            group.addTask { try await writer.submit(batch(10)) }
            try await waitUntil { telemetry.currentQueuedPoints == 10 }
            await #expect(throws: Writer.Failure.self) { try await writer.submit(batch(1)) }

            release.signal()
            var outcomes: [CommitOutcome] = []
            while outcomes.count < 2, let outcome = try await group.next() {
                if let outcome { outcomes.append(outcome) }
            }
            #expect(Set(outcomes.map { "\($0)" }) == ["\(CommitOutcome.stored(points: 5))", "\(CommitOutcome.stored(points: 10))"])
            group.cancelAll()
        }
    }
}

/// Waits for a condition that another task makes true (bounded: fails after 5 s).
func waitUntil(_ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(15)
    while try await !condition() {
        try #require(ContinuousClock.now < deadline, "condition not met within 15 s")
        try await Task.sleep(for: .milliseconds(5))
    }
}
