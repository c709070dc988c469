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

/// Validation of ingested points. The whole batch is rejected on the first invalid point, and the
/// error names the point's index and the field.
package enum PointValidation {
    static let maxNameLength = 200
    static let maxTags = 16
    static let maxTagLength = 128
    static let maxFuture: Int64 = 3_600_000

    static func validate(_ inputs: [PointInput], now: Date) throws -> [MetricPoint] {
        let nowMs = now.millisecondsSince1970
        return try inputs.enumerated().map { index, input in
            func invalid(_ field: String, _ message: String) -> APIError {
                .unprocessable("Item \(index): \(message)", details: ["index": .int(index), "field": .string(field)])
            }
            let name = input.name
            guard !name.isEmpty else { throw invalid("name", "the name is empty.") }
            // Bytes, not Characters: names are ASCII, and this runs for every point.
            guard name.utf8.count <= maxNameLength, name.utf8.allSatisfy(isNameByte) else {
                throw invalid("name", "a name has at most \(maxNameLength) letters, digits and . _ - : /")
            }
            guard input.value.isFinite else { throw invalid("value", "the value is not a finite number.") }
            var timestampMs = nowMs
            if let text = input.timestamp {
                guard let parsed = Timestamp.parseMilliseconds(text) ?? Timestamp.parse(text)?.millisecondsSince1970 else {
                    throw invalid("timestamp", "the timestamp is not ISO-8601.")
                }
                timestampMs = parsed
                guard timestampMs <= nowMs + maxFuture else { throw invalid("timestamp", "the timestamp is more than 1 h in the future.") }
                guard timestampMs >= 0 else { throw invalid("timestamp", "the timestamp is before 1970.") }
            }
            let tags = input.tags ?? [:]
            guard tags.count <= maxTags else { throw invalid("tags", "at most \(maxTags) tags.") }
            for (key, value) in tags {
                guard !key.isEmpty, key.utf8.count <= maxTagLength, value.utf8.count <= maxTagLength else {
                    throw invalid("tags", "tag keys are 1 to \(maxTagLength) bytes, values at most \(maxTagLength).")
                }
            }
            return MetricPoint(series: SeriesKey(name: name, tags: tags), timestampMs: timestampMs, value: input.value)
        }
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
