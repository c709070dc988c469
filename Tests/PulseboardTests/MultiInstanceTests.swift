import Foundation
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import PostgresNIO
import Testing

@testable import PulseboardServer

/// Two instances on one PostgreSQL database, as behind a load balancer.
@Suite("Several instances on PostgreSQL", .enabled(if: TestEngine.all.contains(.postgres)))
struct MultiInstanceTests {
    @Test func livePointsCrossInstancesInOrderEvenAfterTheListenConnectionDrops() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        func config() -> ServerConfig {
            TestApp.config {
                $0.databaseURL = url
                $0.jwtSecret = nil  // generated once and shared through the database
            }
        }
        let first = try await Pulseboard.build(config(), logger: TestApp.logger)
        let second = try await Pulseboard.build(config(), logger: TestApp.logger)
        try await first.application.test(.live) { a in
            try await second.application.test(.live) { b in
                // A token issued by one instance is valid on the other.
                let token = try await a.login().accessToken
                try await b.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                    var reader = LiveReader(inbound)
                    try await outbound.send(#"{"op":"auth","token":"\#(token)"}"#)
                    #expect(try await reader.next().type == "authenticated")
                    try await outbound.send(#"{"op":"subscribe","channel":"metrics:cross"}"#)
                    #expect(try await reader.next().type == "subscribed")
                    for value in 1...3 {
                        #expect(try await a.ingest(#"[{"name":"cross","value":\#(value)}]"#, token: token).status == .ok)
                    }
                    var values: [Double] = []
                    while values.count < 3 { values += try await reader.next().values }
                    #expect(values == [1, 2, 3])

                    // Cut every LISTEN connection; what is ingested meanwhile still arrives.
                    try await Self.terminateListeners(url)
                    for value in 4...6 {
                        #expect(try await a.ingest(#"[{"name":"cross","value":\#(value)}]"#, token: token).status == .ok)
                    }
                    while values.count < 6 { values += try await reader.next().values }
                    #expect(values == [1, 2, 3, 4, 5, 6])
                    try await outbound.close(.normalClosure, reason: nil)
                }
            }
        }
    }

    static func terminateListeners(_ url: String) async throws {
        let client = PostgresClient(configuration: try PostgresStore.configuration(url), backgroundLogger: TestApp.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            let rows = try await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")
                .collect()
            #expect(!rows.isEmpty, "no LISTEN connection was found")
            group.cancelAll()
        }
    }
}
