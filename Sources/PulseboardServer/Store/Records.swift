import Foundation

/// The roles of DESIGN.md: admin manages everything, instructors their classes, students themselves.
public enum Role: String, Codable, Sendable, CaseIterable {
    case admin, instructor, student
}

public struct User: Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var role: Role
    public var passwordHash: String
    public var createdAt: Date
    /// Raised whenever the user's access must end; an access token names the generation it was
    /// issued for and is refused once they differ.
    public var tokenGeneration: Int64 = 0
}

/// A machine credential that may only ingest. The secret itself is never stored, only its SHA-256.
public struct IngestToken: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var prefix: String
    public var createdAt: Date
    public var revokedAt: Date?
}

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
    /// Learning events, each stored once (by class and event id).
    public var events: [LearningEvent]
    /// Scoped by the caller (so two clients cannot collide): "<principal>:<Idempotency-Key>".
    public var idempotencyKey: String?

    public init(points: [MetricPoint] = [], events: [LearningEvent] = [], idempotencyKey: String? = nil) {
        self.points = points
        self.events = events
        self.idempotencyKey = idempotencyKey
    }

    /// What the batch weighs in the writer's queue.
    var size: Int { points.count + events.count }
}

public enum CommitOutcome: Sendable, Equatable {
    /// Stored; `newEvents` are the events not seen before (the others were repeats).
    case stored(points: Int, newEvents: [LearningEvent] = [])
    /// The idempotency key was seen before: the batch was stored by an earlier request.
    case duplicate
}

public struct SeriesSummary: Sendable {
    public var series: SeriesKey
    public var lastTimestampMs: Int64?
    public var lastValue: Double?
}

/// One time bucket of a downsampled history answer.
public struct Bucket: Sendable, Equatable {
    public var startMs: Int64
    public var count: Int64
    public var sum: Double
    public var min: Double
    public var max: Double

    public var average: Double { sum / Double(count) }
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

public enum StoreError: Error, Equatable {
    /// A unique value (an email, say) is taken.
    case conflict(String)
    /// The database cannot be reached or answered with an error that a retry may fix.
    case unavailable(String)
}
