import Foundation
import PulseboardKernel

/// InfluxDB's line protocol, read straight from a body's bytes:
///
///     measurement[,tag=value…] field=value[,field=value…] [timestamp]
///
/// One point per line; `#` comments and blank lines are skipped. Each numeric field becomes the
/// series `<measurement>.<field>` with the line's tags: floats, integers (`12i`), unsigned
/// integers (`12u`) and booleans (1 and 0). String fields are checked and not kept: Pulseboard
/// keeps numbers. A line that cannot be read or stored is reported with its number and reason
/// and stores nothing; the other lines are still read, as InfluxDB does.
///
/// `\` escapes a comma or space in a measurement, a comma, equals sign or space in a tag or field
/// key or a tag value, and itself; a string field escapes `"` and `\`.
package enum LineProtocol {
    /// The unit of the lines' timestamps (`precision=`): InfluxDB 1.x's names (`n`, `u`), 2.x's
    /// (`ns`, `us`), and `ms`, `s`, `m`, `h` of both. Nanoseconds when not given.
    package enum Precision: Sendable {
        case nanoseconds, microseconds, milliseconds, seconds, minutes, hours

        package init?(parameter: String?) {
            switch parameter {
            case nil, "n", "ns": self = .nanoseconds
            case "u", "us", "µ": self = .microseconds
            case "ms": self = .milliseconds
            case "s": self = .seconds
            case "m": self = .minutes
            case "h": self = .hours
            default: return nil
            }
        }

        /// A timestamp in this unit in milliseconds (rounded down: Pulseboard keeps milliseconds);
        /// nil when it does not fit.
        func milliseconds(_ value: Int64) -> Int64? {
            let (divisor, factor): (Int64, Int64) =
                switch self {
                case .nanoseconds: (1_000_000, 1)
                case .microseconds: (1_000, 1)
                case .milliseconds: (1, 1)
                case .seconds: (1, 1_000)
                case .minutes: (1, 60_000)
                case .hours: (1, 3_600_000)
                }
            let (scaled, overflow) = value.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            let quotient = scaled / divisor
            return scaled % divisor < 0 ? quotient - 1 : quotient
        }
    }

    /// A line that stored nothing: its number (from 1), its start, and why.
    package struct LineError: Equatable, Sendable {
        package var line: Int
        package var text: String
        package var reason: String

        /// `line 3 ('cpu usage=abc'): 'abc' is not a number, integer, boolean or string`
        package var description: String { "line \(line) ('\(text)'): \(reason)" }
    }

    package struct Batch {
        package var points: [MetricPoint] = []
        package var errors: [LineError] = []
        /// False when a line had no timestamp (it got the time of arrival): only a body whose every
        /// line has its own timestamp means the same points when it is sent again.
        package var everyLineTimestamped = true
    }

    package static func parse(_ body: Data, precision: Precision, nowMs: Int64) -> Batch {
        body.withUnsafeBytes { bytes in
            var parser = Parser(bytes: bytes, precision: precision, nowMs: nowMs)
            parser.parseLines()
            return parser.batch
        }
    }

    /// Why a line was refused.
    private struct Problem: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Bytes of the body, compared and hashed by content: the key of the caches below. Valid
    /// only while the body is (the parse).
    private struct RawKey: Hashable {
        let bytes: UnsafeRawBufferPointer

        static func == (a: RawKey, b: RawKey) -> Bool {
            a.bytes.count == b.bytes.count && (a.bytes.count == 0 || memcmp(a.bytes.baseAddress!, b.bytes.baseAddress!, a.bytes.count) == 0)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(bytes: bytes)
        }
    }

    /// A measurement with its tags, as a line's first part names them.
    private struct Series {
        var measurement: String
        var tags: [String: String]
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        let precision: Precision
        let nowMs: Int64
        var batch = Batch()
        /// A body repeats the same few series over and over: each is read and checked once.
        var seriesByText: [RawKey: Result<Series, Problem>] = [:]
        var keysByField: [FieldKey: Result<SeriesKey, Problem>] = [:]

        struct FieldKey: Hashable {
            var series: RawKey
            var field: RawKey
        }

        /// A numeric field of the line being read.
        struct Field {
            var key: RawKey
            var value: Double
        }

        init(bytes: UnsafeRawBufferPointer, precision: Precision, nowMs: Int64) {
            self.bytes = bytes
            self.precision = precision
            self.nowMs = nowMs
        }

        mutating func parseLines() {
            var start = 0
            var number = 0
            while start < bytes.count {
                number += 1
                var end = start
                while end < bytes.count, bytes[end] != newline { end += 1 }
                var lineEnd = end
                if lineEnd > start, bytes[lineEnd - 1] == carriageReturn { lineEnd -= 1 }
                do {
                    try parseLine(from: start, to: lineEnd)
                } catch {
                    let shown = min(lineEnd - start, 100)
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<start + shown]), as: UTF8.self)
                    batch.errors.append(LineError(line: number, text: shown < lineEnd - start ? text + "…" : text, reason: error.reason))
                }
                start = end + 1
            }
        }

        mutating func parseLine(from lineStart: Int, to end: Int) throws(Problem) {
            var position = lineStart
            while position < end, bytes[position] == space || bytes[position] == tab { position += 1 }
            guard position < end, bytes[position] != hash else { return }
            let seriesStart = position
            position = try scan(from: position, to: end, stoppingAt: [space], what: "measurement and tags")
            guard position < end else { throw Problem("the line has no fields") }
            let seriesText = RawKey(bytes: slice(seriesStart, position))
            let series = try series(seriesText)
            while position < end, bytes[position] == space { position += 1 }
            guard position < end else { throw Problem("the line has no fields") }

            var fields: [Field] = []
            while true {
                let keyStart = position
                position = try scan(from: position, to: end, stoppingAt: [equals], refusing: [comma, space], what: "field key")
                guard position > keyStart else { throw Problem("a field without a key") }
                guard position < end else { throw Problem("the field \(text(keyStart, position)) has no value") }
                let key = RawKey(bytes: slice(keyStart, position))
                position += 1
                if let value = try fieldValue(at: &position, end: end) { fields.append(Field(key: key, value: value)) }
                guard position < end, bytes[position] == comma else { break }
                position += 1
            }
            guard position == end || bytes[position] == space else { throw Problem("unexpected text after the fields") }

            var timestampMs = nowMs
            while position < end, bytes[position] == space { position += 1 }
            if position < end {
                let sent = try timestamp(at: &position, end: end)
                guard let converted = precision.milliseconds(sent) else { throw Problem("the timestamp \(sent) is out of range") }
                if let problem = PointValidation.problem(withTimestamp: converted, nowMs: nowMs) { throw Problem(problem) }
                timestampMs = converted
                while position < end, bytes[position] == space { position += 1 }
                guard position == end else { throw Problem("unexpected text after the timestamp") }
            } else {
                batch.everyLineTimestamped = false
            }

            // Nothing of the line is stored unless all of it can be.
            var keys: [SeriesKey] = []
            for field in fields {
                keys.append(try seriesKey(FieldKey(series: seriesText, field: field.key), of: series))
            }
            for (key, field) in zip(keys, fields) {
                batch.points.append(MetricPoint(series: key, timestampMs: timestampMs, value: field.value))
            }
        }

        /// The measurement and tags of a line's first part, read once per body.
        mutating func series(_ text: RawKey) throws(Problem) -> Series {
            if let known = seriesByText[text] { return try known.get() }
            let read = Result { () throws(Problem) in try readSeries(text.bytes) }
            seriesByText[text] = read
            return try read.get()
        }

        /// The series of one field, checked like every ingested series, once per body.
        mutating func seriesKey(_ field: FieldKey, of series: Series) throws(Problem) -> SeriesKey {
            if let known = keysByField[field] { return try known.get() }
            let checked = Result { () throws(Problem) in
                let key = SeriesKey(name: series.measurement + "." + (try unescaped(field.field.bytes, what: "field key")), tags: series.tags)
                if let problem = PointValidation.problem(with: key) { throw Problem("\(key.name): \(problem.message)") }
                return key
            }
            keysByField[field] = checked
            return try checked.get()
        }

        /// The measurement and tags of a line's first part.
        func readSeries(_ text: UnsafeRawBufferPointer) throws(Problem) -> Series {
            var position = 0
            let end = text.count
            func name(stoppingAt stops: [UInt8], what: String) throws(Problem) -> String {
                let start = position
                while position < end, !stops.contains(text[position]) {
                    position += text[position] == backslash && position + 1 < end ? 2 : 1
                }
                guard position > start else { throw Problem("an empty \(what)") }
                return try unescaped(UnsafeRawBufferPointer(rebasing: text[start..<position]), what: what)
            }
            let measurement = try name(stoppingAt: [comma], what: "measurement")
            var tags: [String: String] = [:]
            while position < end {
                position += 1  // the comma
                let key = try name(stoppingAt: [equals, comma], what: "tag key")
                guard position < end, text[position] == equals else { throw Problem("the tag \(key) has no value") }
                position += 1
                tags[key] = try name(stoppingAt: [comma], what: "tag value")
            }
            return Series(measurement: measurement, tags: tags)
        }

        /// A field's value (after its `=`), nil for a string; leaves `position` after it.
        func fieldValue(at position: inout Int, end: Int) throws(Problem) -> Double? {
            guard position < end, bytes[position] != comma, bytes[position] != space else { throw Problem("a field without a value") }
            if bytes[position] == quote {
                position += 1
                while position < end, bytes[position] != quote { position += bytes[position] == backslash ? 2 : 1 }
                guard position < end else { throw Problem("a string field without its closing quote") }
                position += 1
                return nil
            }
            let start = position
            while position < end, bytes[position] != comma, bytes[position] != space { position += 1 }
            let token = slice(start, position)
            if [UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F")].contains(token[0]) {
                switch String(decoding: token, as: UTF8.self) {
                case "t", "T", "true", "True", "TRUE": return 1
                case "f", "F", "false", "False", "FALSE": return 0
                default: throw Problem("'\(text(start, position))' is not a number, integer, boolean or string")
                }
            }
            let last = token[token.count - 1]
            if last == UInt8(ascii: "i") || last == UInt8(ascii: "u") {
                let digits = Substring(decoding: UnsafeRawBufferPointer(rebasing: token.dropLast()), as: UTF8.self)
                let integer = last == UInt8(ascii: "i") ? Int64(digits).map { Double($0) } : UInt64(digits).map { Double($0) }
                guard let integer, digits.first != "+" else { throw Problem("'\(text(start, position))' is not an integer field") }
                return integer
            }
            // Digits, one point, an exponent: Swift's Double(_:) also takes inf, nan, hex and "+".
            guard token[0] != UInt8(ascii: "+"), token.allSatisfy({ Self.isNumberByte($0) }),
                let value = Double(Substring(decoding: token, as: UTF8.self))
            else {
                throw Problem("'\(text(start, position))' is not a number, integer, boolean or string")
            }
            guard value.isFinite else { throw Problem("'\(text(start, position))' is out of range") }
            return value
        }

        func timestamp(at position: inout Int, end: Int) throws(Problem) -> Int64 {
            let start = position
            while position < end, bytes[position] != space { position += 1 }
            guard let value = Int64(Substring(decoding: slice(start, position), as: UTF8.self)), bytes[start] != UInt8(ascii: "+") else {
                throw Problem("the timestamp '\(text(start, position))' is not an integer")
            }
            return value
        }

        /// The position of the first `stops` byte from `position` that is not escaped (or `end`),
        /// refusing unescaped `refused` bytes on the way.
        func scan(from start: Int, to end: Int, stoppingAt stops: [UInt8], refusing refused: [UInt8] = [], what: String) throws(Problem) -> Int {
            var position = start
            while position < end, !stops.contains(bytes[position]) {
                if refused.contains(bytes[position]) { throw Problem("an unescaped '\(Character(Unicode.Scalar(bytes[position])))' in a \(what)") }
                position += bytes[position] == backslash && position + 1 < end ? 2 : 1
            }
            return position
        }

        /// A name with its escapes resolved, which must be UTF-8.
        func unescaped(_ text: UnsafeRawBufferPointer, what: String) throws(Problem) -> String {
            let decoded: String?
            if !text.contains(backslash) {
                decoded = String(validating: text, as: UTF8.self)
            } else {
                var utf8: [UInt8] = []
                var position = 0
                while position < text.count {
                    if text[position] == backslash, position + 1 < text.count, Self.escapable.contains(text[position + 1]) { position += 1 }
                    utf8.append(text[position])
                    position += 1
                }
                decoded = String(validating: utf8, as: UTF8.self)
            }
            guard let decoded else { throw Problem("a \(what) that is not UTF-8") }
            return decoded
        }

        func slice(_ start: Int, _ end: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[start..<end]) }
        func text(_ start: Int, _ end: Int) -> String { String(decoding: slice(start, end), as: UTF8.self) }

        static let escapable: [UInt8] = [comma, equals, space, backslash]
        static func isNumberByte(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
        }
    }
}

private let newline = UInt8(ascii: "\n")
private let carriageReturn = UInt8(ascii: "\r")
private let space = UInt8(ascii: " ")
private let tab = UInt8(ascii: "\t")
private let comma = UInt8(ascii: ",")
private let equals = UInt8(ascii: "=")
private let quote = UInt8(ascii: "\"")
private let backslash = UInt8(ascii: "\\")
private let hash = UInt8(ascii: "#")
