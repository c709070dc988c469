import Foundation

/// Where points, series and rollups are kept: the ingest hot path and history reads, written per
/// engine because each is fastest its own way (prepared statements in SQLite, whole columns as
/// arrays in PostgreSQL). Everything else about the database goes through `Database`.
package protocol MetricsStore: Sendable {
    /// Stores the batches in one transaction, in order, and returns one outcome per batch.
    func commit(_ batches: [IngestBatch], now: Date) async throws -> [CommitOutcome]
    func seriesID(_ key: SeriesKey) async throws -> Int64?
    func listSeries() async throws -> [SeriesSummary]
    /// Raw points in [from, to], oldest first, at most `limit`.
    func points(seriesID: Int64, fromMs: Int64, toMs: Int64, limit: Int) async throws -> [(timestampMs: Int64, value: Double)]
    func countPoints(seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64
    /// Sum of the rollup counts of the buckets that start in [from, to).
    func countRollup(_ rollup: Rollup, seriesID: Int64, fromMs: Int64, toMs: Int64) async throws -> Int64
    /// Buckets of `widthMs` aligned to the epoch, over [from, to), from the raw points or a rollup
    /// whose width divides `widthMs`.
    func buckets(seriesID: Int64, fromMs: Int64, toMs: Int64, widthMs: Int64, source: Rollup?) async throws -> [Bucket]
    /// Retention: points and rollups before `pointsBefore`, idempotency keys before their time.
    func prune(pointsBefore: Date, idempotencyKeysBefore: Date, now: Date) async throws
    /// The log of commits that other instances sharing the database read to publish them live;
    /// nil when no other instance can share it.
    var liveLog: (any LiveLog)? { get }
}

/// Commits in the order an instance made them, for the other instances (`PointRelay`).
package protocol LiveLog: Sendable {
    /// Rings after every commit that logged points.
    var committed: AsyncStream<Void> { get }
    /// Another instance's logged commits after `seq` (oldest first), at most `limit`.
    func liveLog(instance: String, after seq: Int64, notBefore createdMs: Int64, limit: Int64) async throws -> [(seq: Int64, points: [MetricPoint])]
    /// The other instances that logged commits since `createdMs`, with their latest sequence.
    func liveInstances(since createdMs: Int64) async throws -> [(instance: String, seq: Int64)]
}
