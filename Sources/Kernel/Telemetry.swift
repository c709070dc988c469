import Prometheus
import Synchronization

/// The server's own metrics, exported at `GET /metrics` in the Prometheus text format. One registry
/// per application (no global metrics system), so that tests and several apps in one process
/// each count their own.
public final class Telemetry: Sendable {
    public let registry = PrometheusCollectorRegistry()

    let ingestPoints: Counter
    let ingestBatches: Counter
    let writerQueueDepth: Gauge
    let writerCommitSeconds: DurationHistogram
    let webSocketConnections: Gauge
    private let storedPoints: Gauge
    private let storedBytes: Gauge
    private let storedChunks: Gauge
    private let webSocketDroppedClients: Counter
    /// Points committed since the last sample of the host collector (for its points/s series).
    private let committedSinceSample = Atomic<Int>(0)
    private let connections = Atomic<Int>(0)
    private let closedConnections = Atomic<Int>(0)
    private let queuedPoints = Atomic<Int>(0)
    private let droppedClients = Atomic<Int>(0)
    private let liveNotifications: Counter
    package let eventsReceived: Counter
    package let eventFieldsDropped: Counter
    package let eventHandlerFailures: Counter
    package let remoteWriteSamplesSkipped: Counter
    package let classCardsUnpublished: Counter
    /// Learning events that reached no class, dropped past the bounds of the ones kept.
    package let strayEventsDropped: Counter
    /// Request-log rows and task steps dropped because the log's queue was full.
    package let operationsLogDropped: Counter
    package let operationsLogFailedWrites: Counter
    /// 1 while this instance's LISTEN connection to PostgreSQL is up, 0 while it reconnects.
    package let listenConnected: Gauge
    package let databaseConnectionsInUse: Gauge
    package let databaseConnectionsIdle: Gauge
    package let databaseConnectionsMaximum: Gauge
    private let notificationsSent = Atomic<Int>(0)

    public init() {
        ingestPoints = registry.makeCounter(name: "pulseboard_ingest_points_total", help: "Metric points committed.")
        ingestBatches = registry.makeCounter(name: "pulseboard_ingest_batches_total", help: "Ingest batches committed.")
        writerQueueDepth = registry.makeGauge(name: "pulseboard_writer_queue_points", help: "Points waiting for the writer.")
        writerCommitSeconds = registry.makeDurationHistogram(
            name: "pulseboard_writer_commit_seconds",
            buckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .seconds(1),
            ],
            help: "Time to commit one group of batches."
        )
        liveNotifications = registry.makeCounter(
            name: "pulseboard_live_notifications_total",
            help: "NOTIFY messages sent to other instances (PostgreSQL only)."
        )
        eventsReceived = registry.makeCounter(name: "pulseboard_events_received_total", help: "Learning events received (repeats included).")
        eventFieldsDropped = registry.makeCounter(
            name: "pulseboard_event_fields_dropped_total",
            help: "Fields of learning events dropped for having the wrong type (the events were kept)."
        )
        eventHandlerFailures = registry.makeCounter(
            name: "pulseboard_event_handler_failures_total",
            help: "Failed attempts to apply learning events to the class picture (retried)."
        )
        remoteWriteSamplesSkipped = registry.makeCounter(
            name: "pulseboard_remote_write_samples_skipped_total",
            help: "Prometheus remote-write samples not stored because they are not finite: stale markers, NaN and infinities."
        )
        classCardsUnpublished = registry.makeCounter(
            name: "pulseboard_class_cards_unpublished_total",
            help: "Students' class cards not published live because they could not be read (shown at the next event or a reload)."
        )
        strayEventsDropped = registry.makeCounter(
            name: "pulseboard_stray_events_dropped_total",
            help: "Learning events with a missing, unknown or expired class token dropped because more were kept than the bounds allow (oldest first).")
        operationsLogDropped = registry.makeCounter(
            name: "pulseboard_operations_log_dropped_total",
            help: "Request-log rows and task steps not recorded because the log's queue was full (the requests themselves were served).")
        operationsLogFailedWrites = registry.makeCounter(
            name: "pulseboard_operations_log_write_failures_total",
            help: "Batches of request-log rows and task steps that could not be written to the database (dropped after a retry).")
        webSocketConnections = registry.makeGauge(name: "pulseboard_websocket_connections", help: "Open WebSocket connections.")
        listenConnected = registry.makeGauge(
            name: "pulseboard_listen_connected", help: "1 while the LISTEN connection to PostgreSQL is up, 0 while it reconnects (PostgreSQL only).")
        databaseConnectionsInUse = registry.makeGauge(
            name: "pulseboard_db_connections_in_use",
            help: "PostgreSQL connections leased from this instance's pool now, LISTEN included (0 on SQLite).")
        databaseConnectionsIdle = registry.makeGauge(
            name: "pulseboard_db_connections_idle", help: "PostgreSQL connections of this instance's pool open and waiting for a lease (0 on SQLite).")
        databaseConnectionsMaximum = registry.makeGauge(
            name: "pulseboard_db_connections_max", help: "The most PostgreSQL connections this instance opens (--database-pool-size; 0 on SQLite).")
        storedPoints = registry.makeGauge(name: "pulseboard_stored_points", help: "Metric points stored (after each compaction pass).")
        storedBytes = registry.makeGauge(name: "pulseboard_stored_bytes", help: "Bytes of the stored points' compressed chunks (after each compaction pass).")
        storedChunks = registry.makeGauge(name: "pulseboard_stored_chunks", help: "Chunks the points are stored in (after each compaction pass).")
        webSocketDroppedClients = registry.makeCounter(
            name: "pulseboard_websocket_dropped_clients_total",
            help: "WebSocket clients closed because they could not keep up."
        )
    }

    package func recordHTTPRequest(method: String, route: String, status: Int, duration: Duration) {
        registry.makeCounter(
            name: "http_requests_total",
            labels: [("method", method), ("route", route), ("status", String(status))],
            help: "HTTP requests by method, route and status."
        ).increment()
        registry.makeDurationHistogram(
            name: "http_request_duration_seconds",
            labels: [("method", method), ("route", route)],
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .milliseconds(500), .seconds(1), .seconds(5),
            ],
            help: "HTTP request duration."
        ).record(duration)
    }

    package func recordStorage(points: Int64, bytes: Int64, chunks: Int64) {
        storedPoints.set(Double(points))
        storedBytes.set(Double(bytes))
        storedChunks.set(Double(chunks))
    }

    package func recordCommit(batches: Int, points: Int, duration: Duration) {
        ingestBatches.increment(by: Int64(batches))
        ingestPoints.increment(by: Int64(points))
        committedSinceSample.add(points, ordering: .relaxed)
        writerCommitSeconds.record(duration)
    }

    package func setQueuedPoints(_ points: Int) {
        queuedPoints.store(points, ordering: .relaxed)
        writerQueueDepth.set(Int64(points))
    }

    package var currentQueuedPoints: Int { queuedPoints.load(ordering: .relaxed) }

    package func webSocketOpened() {
        webSocketConnections.set(Int64(connections.add(1, ordering: .relaxed).newValue))
    }

    package func webSocketClosed() {
        webSocketConnections.set(Int64(connections.subtract(1, ordering: .relaxed).newValue))
        closedConnections.add(1, ordering: .relaxed)
    }

    /// WebSockets closed since the start.
    package var closedWebSocketConnections: Int { closedConnections.load(ordering: .relaxed) }

    package var currentWebSocketConnections: Int { connections.load(ordering: .relaxed) }

    package func webSocketClientDropped() {
        webSocketDroppedClients.increment()
        droppedClients.add(1, ordering: .relaxed)
    }

    var droppedWebSocketClients: Int { droppedClients.load(ordering: .relaxed) }

    package func liveNotificationSent() {
        liveNotifications.increment()
        notificationsSent.add(1, ordering: .relaxed)
    }

    /// NOTIFY messages sent since start (for the benchmark's notifications per second).
    public var liveNotificationsSent: Int { notificationsSent.load(ordering: .relaxed) }

    /// Points committed since the previous call.
    package func takeCommittedPoints() -> Int {
        committedSinceSample.exchange(0, ordering: .relaxed)
    }
}
