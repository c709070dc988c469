import Foundation
import PulseboardDatabase
import PulseboardKernel

/// A series is a metric name plus its exact tag set.
public struct SeriesKey: Hashable, Sendable {
    public var name: String
    public var tags: [String: String]

    public init(name: String, tags: [String: String] = [:]) {
        self.name = name
        self.tags = tags
    }

    /// Tags in one canonical text form (sorted keys), which is how a series is recognised in storage.
    public var canonicalTags: String {
        guard !tags.isEmpty else { return "{}" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(tags)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func tags(fromCanonical text: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }
}

/// One validated point on its way to storage. Timestamps are milliseconds since the Unix epoch.
public struct MetricPoint: Sendable, Equatable {
    public var series: SeriesKey
    public var timestampMs: Int64
    public var value: Double

    public init(series: SeriesKey, timestampMs: Int64, value: Double) {
        self.series = series
        self.timestampMs = timestampMs
        self.value = value
    }
}

/// What one ingest request hands to the writer.
public struct IngestBatch: Sendable {
    public var points: [MetricPoint]
    /// Rows of another feature stored in the same transaction, each once (the classroom's raw
    /// events): one acknowledgement then covers both.
    var rowsOnce: RowsOnce?
    /// Scoped by the caller (so two clients cannot collide): "<principal>:<Idempotency-Key>".
    public var idempotencyKey: String?
    /// Called by the writer after the commit, in commit order, with the indices of `rowsOnce`
    /// that were new (the others were repeats).
    var committed: (@Sendable (_ newRows: [Int]) -> Void)?

    public init(points: [MetricPoint] = [], idempotencyKey: String? = nil) {
        self.points = points
        self.idempotencyKey = idempotencyKey
    }

    package init(rowsOnce: RowsOnce, committed: @escaping @Sendable (_ newRows: [Int]) -> Void) {
        self.points = []
        self.rowsOnce = rowsOnce
        self.committed = committed
    }

    /// What the batch weighs in the writer's queue.
    var size: Int { points.count + (rowsOnce?.rows.count ?? 0) }
}

public enum CommitOutcome: Sendable, Equatable {
    /// Stored; `newRows` are the indices of the batch's `rowsOnce` not stored before.
    case stored(points: Int, newRows: [Int] = [])
    /// The idempotency key was seen before: the batch was stored by an earlier request.
    case duplicate
}

public struct SeriesSummary: Sendable {
    public var series: SeriesKey
    public var lastTimestampMs: Int64?
    public var lastValue: Double?
    public var stored: StoredSize
}

/// Points stored, and the bytes of their chunks (without the database's own overhead).
public struct StoredSize: Sendable {
    public var points: Int64 = 0
    public var bytes: Int64 = 0
    public var chunks: Int64 = 0
}

/// One time bucket of a downsampled history answer.
public struct Bucket: Sendable, Equatable, Decodable {
    /// Decoded from the column `bucket_start`.
    public var startMs: Int64
    public var count: Int64
    public var sum: Double
    public var min: Double
    public var max: Double

    public var average: Double { sum / Double(count) }

    static func empty(startingAt startMs: Int64) -> Bucket {
        Bucket(startMs: startMs, count: 0, sum: 0, min: .infinity, max: -.infinity)
    }

    mutating func add(_ value: Double) {
        count += 1
        sum += value
        min = Swift.min(min, value)
        max = Swift.max(max, value)
    }

    enum CodingKeys: String, CodingKey {
        case count, sum, min, max
        case startMs = "bucketStart"
    }
}

/// Pre-aggregated copies of the points that the writer keeps up to date, so that a history query
/// over months reads thousands of rows instead of millions.
public enum Rollup: CaseIterable, Sendable {
    case minute, hour

    public var widthMs: Int64 {
        switch self {
        case .minute: 60_000
        case .hour: 3_600_000
        }
    }

    var table: String {
        switch self {
        case .minute: "rollup_1m"
        case .hour: "rollup_1h"
        }
    }
}
