import Foundation
import Hummingbird
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// `GET /health`, `GET /metrics` (Prometheus) and `GET /openapi.json`.
package struct OperationsController {
    let store: any Database
    let telemetry: Telemetry
    let openAPIDocument: [UInt8]
    let startedAt = Date()

    struct Health: Encodable {
        var status: String
        var database: String
        /// PostgreSQL only: `connected`, or `reconnecting` while live messages from the other
        /// instances wait (they are caught up after the reconnect).
        var listen: String?
        var uptimeSeconds: Int
    }

    var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/health") { _, _ -> Response in
            let databaseAnswers = await withTimeout(.seconds(2)) { try await store.ping() }
            let health = Health(
                status: databaseAnswers ? "ok" : "unavailable",
                database: databaseAnswers ? "ok" : "unreachable",
                listen: store.notifications.map { $0.isListening ? "connected" : "reconnecting" },
                uptimeSeconds: Int(Date().timeIntervalSince(startedAt))
            )
            var response = try JSONResponse(health, status: databaseAnswers ? .ok : .serviceUnavailable).response
            if !databaseAnswers { response.headers[.retryAfter] = "2" }
            return response
        }
        router.get("/metrics") { _, _ -> Response in
            if let notifications = store.notifications { telemetry.listenConnected.set(Int64(notifications.isListening ? 1 : 0)) }
            // While the database is away the pool's gauges keep their last values.
            if let use = try? await store.connectionUse() {
                telemetry.databaseConnectionsInUse.set(Int64(use.inUse))
                telemetry.databaseConnectionsIdle.set(Int64(use.idle))
                telemetry.databaseConnectionsMaximum.set(Int64(use.maximum))
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: telemetry.registry.emitToBuffer()))
            )
        }
        router.get("/openapi.json") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: openAPIDocument))
            )
        }
        return router
    }
}

/// Runs `body` and reports whether it finished without error within `limit`.
package func withTimeout(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
        group.addTask { (try? await body()) != nil }
        group.addTask {
            try? await Task.sleep(for: limit)
            return false
        }
        let first = await group.next() ?? false
        group.cancelAll()
        return first
    }
}
