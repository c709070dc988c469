import Foundation
import Logging
import PostgresNIO
import PulseboardDatabase
import PulseboardKernel
import PulseboardPostgres
import Synchronization

/// Points, series and rollups in PostgreSQL. Bulk writes send whole columns as arrays
/// (`unnest`), so a commit of thousands of points is a handful of statements: one for the
/// chunks, one per rollup, one for the series. Each commit is
/// also written to the live log for the other instances (`PointRelay`).
package final class PostgresMetricsStore: MetricsStore, LiveLog {
    let engine: PostgresEngine
    package var database: any Database { engine }
    var logger: Logger { engine.logger }
    private let seriesIDs = Mutex<[SeriesKey: Int64]>([:])

    /// This process among the instances sharing the database. Its commits are numbered 1, 2, 3…
    /// in the live log (one writer per instance makes that order the commit order), which is how
    /// other instances fetch exactly what they have not seen.
    let instanceID: String
    private let liveSequence = Mutex<Int64>(0)
    /// Rings after every commit that logged points; `PointRelay` turns it into a NOTIFY.
    package let committed: AsyncStream<Void>
    private let ringCommitted: AsyncStream<Void>.Continuation

    package var liveLog: (any LiveLog)? { self }

    package init(engine: PostgresEngine, instanceID: String) {
        self.engine = engine
        self.instanceID = instanceID
        (committed, ringCommitted) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    package func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome] {
        let known = seriesIDs.withLock { $0 }
        let logger = self.logger
        let instance = instanceID
        let sequence = liveSequence.withLock { $0 } + 1
        let (outcomes, created, logged) = try await engine.transaction { connection -> ([CommitOutcome], [SeriesKey: Int64], Bool) in
            var keys: [Int64: SeriesKey] = [:]
            var outcomes: [CommitOutcome] = []
            var created: [SeriesKey: Int64] = [:]
            var points: [Int64: [Chunk.Point]] = [:]
            /// The batches' rows stored once, all in one go after the loop.
            var once: [(outcome: Int, points: Int, rows: RowsOnce)] = []
            for batch in batches {
                if let key = batch.idempotencyKey {
                    let claimed = try await connection.query(
                        "INSERT INTO idempotency_keys (key, created_at, points) VALUES (\(key), \(now.millisecondsSince1970), \(Int64(batch.points.count))) ON CONFLICT (key) DO NOTHING RETURNING key",
                        logger: logger
                    ).collect()
                    if claimed.isEmpty {
                        outcomes.append(.duplicate)
                        continue
                    }
                }
                for point in batch.points {
                    let id: Int64
                    if let existing = known[point.series] ?? created[point.series] {
                        id = existing
                    } else {
                        id = try await Self.findOrCreateSeries(point.series, on: connection, logger: logger)
                        created[point.series] = id
                    }
                    points[id, default: []].append((point.timestampMs, point.value))
                    keys[id] = point.series
                }
                if let rowsOnce = batch.rowsOnce { once.append((outcomes.count, batch.points.count, rowsOnce)) }
                outcomes.append(.stored(points: batch.points.count))
            }
            if !once.isEmpty {
                let merged = RowsOnce(merging: once.map(\.rows))
                var returned: [SQLRow] = []
                for statement in merged.statements(rowsPerStatement: PostgresEngine.rowsPerStatement) {
                    returned += try await PostgresEngine.run(statement, on: connection, logger: logger)
                }
                let newRows = merged.newRows(returnedKeys: returned)
                for statement in merged.pendingStatements(newRows: newRows, rowsPerStatement: PostgresEngine.rowsPerStatement) {
                    _ = try await PostgresEngine.run(statement, on: connection, logger: logger)
                }
                for (part, new) in zip(once, RowsOnce.split(newRows, into: once.map(\.rows))) {
                    outcomes[part.outcome] = .stored(points: part.points, newRows: new)
                }
            }
            if !points.isEmpty {
                let sorted = Chunk.sorted(points)
                let chunks = Chunk.cut(sorted)
                try await connection.query(
                    """
                    INSERT INTO chunks (series_id, start_ts, end_ts, count, data)
                    SELECT * FROM unnest(\(chunks.map(\.seriesID))::BIGINT[], \(chunks.map(\.chunk.startMs))::BIGINT[], \(chunks.map(\.chunk.endMs))::BIGINT[],
                        \(chunks.map { Int64($0.chunk.count) })::BIGINT[], \(chunks.map { ByteBuffer(bytes: $0.chunk.bytes) })::BYTEA[])
                    """,
                    logger: logger
                )
                try await Self.apply(CommitAggregates(sorted), on: connection, logger: logger)
                let payload = ByteBuffer(bytes: LoggedCommit.encode(chunks.map { (keys[$0.seriesID]!, $0.chunk.bytes) }))
                try await connection.query(
                    "INSERT INTO live_log (instance, seq, created_at, points) VALUES (\(instance), \(sequence), \(now.millisecondsSince1970), \(payload))",
                    logger: logger
                )
            }
            return (outcomes, created, !points.isEmpty)
        }
        if !created.isEmpty {
            seriesIDs.withLock { $0.merge(created) { old, _ in old } }
        }
        if logged {
            liveSequence.withLock { $0 = sequence }
            ringCommitted.yield()
        }
        return outcomes
    }

    package func liveLog(instance: String, after seq: Int64, notBefore createdMs: Int64, limit: Int64) async throws -> [(seq: Int64, points: [MetricPoint])] {
        var entries: [(seq: Int64, points: [MetricPoint])] = []
        let rows = try await engine.rows(
            "SELECT seq, points FROM live_log WHERE instance = \(instance) AND seq > \(seq) AND created_at >= \(createdMs) ORDER BY seq LIMIT \(limit)"
        )
        for row in rows {
            let (seq, payload) = try row.decode((Int64, ByteBuffer).self)
            entries.append((seq, try LoggedCommit.decode(Array(payload.readableBytesView))))
        }
        return entries
    }

    package func liveInstances(since createdMs: Int64) async throws -> [(instance: String, seq: Int64)] {
        var result: [(instance: String, seq: Int64)] = []
        let rows = try await engine.rows(
            "SELECT instance, MAX(seq) FROM live_log WHERE created_at >= \(createdMs) AND instance <> \(instanceID) GROUP BY instance"
        )
        for row in rows {
            let (instance, seq) = try row.decode((String, Int64).self)
            result.append((instance, seq))
        }
        return result
    }

    private static func findOrCreateSeries(_ key: SeriesKey, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        let tags = key.canonicalTags
        for try await id in try await connection.query(
            "INSERT INTO series (name, tags) VALUES (\(key.name), \(tags)) ON CONFLICT (name, tags) DO NOTHING RETURNING id",
            logger: logger
        ).decode(Int64.self) {
            return id
        }
        for try await id in try await connection.query("SELECT id FROM series WHERE name = \(key.name) AND tags = \(tags)", logger: logger).decode(Int64.self) {
            return id
        }
        throw StoreError.unavailable("series \(key.name) vanished")
    }

    private static func apply(_ aggregates: CommitAggregates, on connection: PostgresConnection, logger: Logger) async throws {
        // Rows are touched in id order, so that concurrent instances cannot deadlock on them.
        let series = aggregates.series
        try await connection.query(
            """
            UPDATE series AS s SET
                last_value = CASE WHEN s.last_ts IS NULL OR s.last_ts <= u.ts THEN u.v ELSE s.last_value END,
                last_ts = GREATEST(COALESCE(s.last_ts, u.ts), u.ts)
            FROM unnest(\(series.map(\.id))::BIGINT[], \(series.map(\.delta.lastTimestampMs))::BIGINT[], \(series.map(\.delta.lastValue))::DOUBLE PRECISION[]) AS u(id, ts, v)
            WHERE s.id = u.id
            """,
            logger: logger
        )
        for (rollup, buckets) in aggregates.rollups {
            var binds = PostgresBindings()
            binds.append(buckets.map(\.seriesID))
            binds.append(buckets.map(\.bucket.startMs))
            binds.append(buckets.map(\.bucket.count))
            binds.append(buckets.map(\.bucket.sum))
            binds.append(buckets.map(\.bucket.min))
            binds.append(buckets.map(\.bucket.max))
            let table = rollup.table
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(table) (series_id, bucket, count, sum, min, max)
                        SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::DOUBLE PRECISION[], $5::DOUBLE PRECISION[], $6::DOUBLE PRECISION[])
                        ON CONFLICT (series_id, bucket) DO UPDATE SET
                            count = \(table).count + excluded.count,
                            sum = \(table).sum + excluded.sum,
                            min = LEAST(\(table).min, excluded.min),
                            max = GREATEST(\(table).max, excluded.max)
                        """,
                    binds: binds
                ),
                logger: logger
            )
        }
    }

    package func knownSeriesID(_ key: SeriesKey) -> Int64? {
        seriesIDs.withLock { $0[key] }
    }

    /// Every commit stores its chunks, rollups and last values at once.
    package func settle() async throws {}
}

/// A commit as the live log keeps it: per series its name, its canonical tags and the chunk the
/// commit stored, each prefixed by its length (a varint).
enum LoggedCommit {
    static func encode(_ series: [(key: SeriesKey, chunk: [UInt8])]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (key, chunk) in series {
            for part in [Array(key.name.utf8), Array(key.canonicalTags.utf8), chunk] {
                ChunkCodec.appendVarint(UInt64(part.count), to: &bytes)
                bytes += part
            }
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> [MetricPoint] {
        var points: [MetricPoint] = []
        var offset = 0
        func part() throws -> ArraySlice<UInt8> {
            let count = Int(clamping: try ChunkCodec.readVarint(bytes, at: &offset))
            guard count <= bytes.count - offset else { throw ChunkCodec.Unreadable(reason: "a live log entry is cut short") }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        while offset < bytes.count {
            let series = SeriesKey(
                name: String(decoding: try part(), as: UTF8.self), tags: SeriesKey.tags(fromCanonical: String(decoding: try part(), as: UTF8.self)))
            points += try ChunkCodec.decode(Array(try part())).map { MetricPoint(series: series, timestampMs: $0.timestampMs, value: $0.value) }
        }
        return points
    }
}
