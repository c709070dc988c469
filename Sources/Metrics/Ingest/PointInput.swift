import Foundation
import PulseboardHTTP
import PulseboardKernel

/// A metric point as clients send it: `{name, value, timestamp?, tags?}`.
package struct PointInput: Decodable, Equatable {
    var name: String
    var value: Double
    var timestamp: String?
    var tags: [String: String]?
}

/// What every ingest path accepts, whatever the protocol: names, tags, values and timestamps.
package enum PointValidation {
    static let maxNameLength = 200
    static let maxTags = 16
    static let maxTagLength = 128
    static let maxFuture: Int64 = 3_600_000

    /// Validates a JSON batch. The whole batch is rejected on the first invalid point, and the
    /// error names the point's index and the field.
    static func validate(_ inputs: [PointInput], now: Date) throws -> [MetricPoint] {
        let nowMs = now.millisecondsSince1970
        return try inputs.enumerated().map { index, input in
            func invalid(_ field: String, _ message: String) -> APIError {
                .unprocessable("Item \(index): \(message)", details: ["index": .int(index), "field": .string(field)])
            }
            let series = SeriesKey(name: input.name, tags: input.tags ?? [:])
            if let problem = problem(with: series) { throw invalid(problem.field, problem.message) }
            guard input.value.isFinite else { throw invalid("value", "the value is not a finite number.") }
            var timestampMs = nowMs
            if let text = input.timestamp {
                guard let parsed = Timestamp.parseMilliseconds(text) ?? Timestamp.parse(text)?.millisecondsSince1970 else {
                    throw invalid("timestamp", "the timestamp is not ISO-8601.")
                }
                if let problem = problem(withTimestamp: parsed, nowMs: nowMs) { throw invalid("timestamp", problem) }
                timestampMs = parsed
            }
            return MetricPoint(series: series, timestampMs: timestampMs, value: input.value)
        }
    }

    /// Why a series cannot be stored, with the field at fault (`name` or `tags`); nil when it can.
    static func problem(with series: SeriesKey) -> (field: String, message: String)? {
        let name = series.name
        guard !name.isEmpty else { return ("name", "the name is empty.") }
        // Bytes, not Characters: names are ASCII, and this runs for every point.
        guard name.utf8.count <= maxNameLength, name.utf8.allSatisfy(isNameByte) else {
            return ("name", "a name has at most \(maxNameLength) letters, digits and . _ - : /")
        }
        guard series.tags.count <= maxTags else { return ("tags", "at most \(maxTags) tags.") }
        for (key, value) in series.tags {
            guard !key.isEmpty, key.utf8.count <= maxTagLength, value.utf8.count <= maxTagLength else {
                return ("tags", "tag keys are 1 to \(maxTagLength) bytes, values at most \(maxTagLength).")
            }
        }
        return nil
    }

    /// Why a timestamp (milliseconds) cannot be stored; nil when it can.
    static func problem(withTimestamp timestampMs: Int64, nowMs: Int64) -> String? {
        if timestampMs > nowMs + maxFuture { return "the timestamp is more than 1 h in the future." }
        if timestampMs < 0 { return "the timestamp is before 1970." }
        return nil
    }

    /// ASCII letters, digits and . _ - : /
    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "/"): true
        default: false
        }
    }
}
