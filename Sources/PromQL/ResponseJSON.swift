import Foundation

/// Prometheus's HTTP API answers, byte for byte as Prometheus writes them: sample values as
/// strings (shortest form that reads back exactly, exponent notation below 1e-6 and from 1e21,
/// `NaN`, `+Inf`, `-Inf`), timestamps as seconds with up to three decimals.
public enum ResponseJSON {
    public static func success(_ result: QueryResult) -> String {
        // Written into bytes: a range query answers hundreds of thousands of values.
        var out = Array(#"{"status":"success","data":{"resultType":"#.utf8)
        switch result {
        case .scalar(let time, let value):
            out += #""scalar","result":"#.utf8
            appendPoint(time, value, to: &out)
        case .string(let time, let text):
            out += #""string","result":["#.utf8
            appendTimestamp(time, to: &out)
            out += ("," + string(text) + "]").utf8
        case .vector(let samples):
            out += #""vector","result":["#.utf8
            for (index, sample) in samples.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += (#"{"metric":"# + metric(sample.labels) + #","value":"#).utf8
                appendPoint(sample.timestampMs, sample.value, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        case .matrix(let series):
            out += #""matrix","result":["#.utf8
            for (index, one) in series.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += (#"{"metric":"# + metric(one.labels) + #","values":["#).utf8
                for (sampleIndex, sample) in one.samples.enumerated() {
                    if sampleIndex > 0 { out.append(UInt8(ascii: ",")) }
                    appendPoint(sample.timestampMs, sample.value, to: &out)
                }
                out += "]}".utf8
            }
            out.append(UInt8(ascii: "]"))
        }
        out += "}}".utf8
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"status":"success","data":…}` around data already written as JSON.
    public static func success(data: String) -> String {
        #"{"status":"success","data":"# + data + "}"
    }

    /// A list of strings, as the label endpoints answer.
    public static func strings(_ values: [String]) -> String {
        "[" + values.map(string).joined(separator: ",") + "]"
    }

    /// A list of label sets, as the series endpoint answers.
    public static func metrics(_ labels: [Labels]) -> String {
        "[" + labels.map(metric).joined(separator: ",") + "]"
    }

    /// `errorType` is `bad_data`, `execution`, `unavailable`…
    public static func error(_ type: String, _ message: String) -> String {
        #"{"status":"error","errorType":"# + string(type) + #","error":"# + string(message) + "}"
    }

    static func metric(_ labels: Labels) -> String {
        "{" + labels.all.map { string($0.name) + ":" + string($0.value) }.joined(separator: ",") + "}"
    }

    /// `[1435781451.781,"1"]`
    static func appendPoint(_ timestampMs: Int64, _ value: Double, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        appendTimestamp(timestampMs, to: &out)
        out += ",\"".utf8
        appendValue(value, to: &out)
        out += "\"]".utf8
    }

    /// Milliseconds as seconds: `1435781451.781`, `1435781451.05` is `.050`, whole seconds bare.
    static func appendTimestamp(_ milliseconds: Int64, to out: inout [UInt8]) {
        if milliseconds < 0 { out.append(UInt8(ascii: "-")) }
        let magnitude = milliseconds.magnitude
        // The seconds' digits, written from the last one back into a buffer on the stack.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var first = digits.count
            var seconds = magnitude / 1000
            repeat {
                first -= 1
                digits[first] = UInt8(ascii: "0") + UInt8(seconds % 10)
                seconds /= 10
            } while seconds > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[first...]))
        }
        let fraction = magnitude % 1000
        guard fraction != 0 else { return }
        out.append(UInt8(ascii: "."))
        out.append(UInt8(ascii: "0") + UInt8(fraction / 100))
        out.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(fraction % 10))
    }

    static func timestamp(_ milliseconds: Int64) -> String {
        var out: [UInt8] = []
        appendTimestamp(milliseconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Go's `strconv.FormatFloat(v, 'f' or 'e', -1, 64)` as Prometheus chooses between them.
    public static func format(_ value: Double) -> String {
        var out: [UInt8] = []
        appendValue(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `format(value)` written into `out`.
    static func appendValue(_ value: Double, to out: inout [UInt8]) {
        // Swift's description has the shortest digits that read back exactly, as Go's -1
        // precision, and is already Go's 'f' form unless it has an exponent (below 1e-4 or from
        // 2^53) or ends in ".0".
        let magnitude = Swift.abs(value)
        if magnitude >= 1e-6 && magnitude < 1e21 {
            var text = value.description
            let written = text.withUTF8 { bytes in
                guard !bytes.contains(UInt8(ascii: "e")) else { return false }
                let count = bytes.count
                let wholeNumber = count >= 2 && bytes[count - 2] == UInt8(ascii: ".") && bytes[count - 1] == UInt8(ascii: "0")
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[..<(wholeNumber ? count - 2 : count)]))
                return true
            }
            if written { return }
        }
        out += spelledOut(value).utf8
    }

    /// What `appendValue` does not take from Swift's description as it is.
    private static func spelledOut(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        var (digits, exponent) = decimalDigits(Swift.abs(value))
        let sign = value < 0 ? "-" : ""
        if Swift.abs(value) < 1e-6 || Swift.abs(value) >= 1e21 {
            let mantissa = digits.count > 1 ? String(digits.first!) + "." + digits.dropFirst() : digits
            let power = exponent - 1
            let powerDigits = String(Swift.abs(power))
            return sign + mantissa + "e" + (power < 0 ? "-" : "+") + (powerDigits.count < 2 ? "0" : "") + powerDigits
        }
        // Plain notation: the decimal point `exponent` digits from the left of `digits`.
        if exponent <= 0 { return sign + "0." + String(repeating: "0", count: -exponent) + digits }
        if exponent >= digits.count { return sign + digits + String(repeating: "0", count: exponent - digits.count) }
        digits.insert(".", at: digits.index(digits.startIndex, offsetBy: exponent))
        return sign + digits
    }

    /// The significant digits of a positive finite value and where its decimal point goes: the
    /// value is 0.`digits` × 10^`exponent`.
    static func decimalDigits(_ value: Double) -> (digits: String, exponent: Int) {
        let text = value.description  // "123.45", "1e-07", "1.5e+21"
        let parts = text.split(separator: "e")
        let mantissa = parts[0]
        let power = parts.count > 1 ? Int(parts[1])! : 0
        let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integer = String(pieces[0])
        let fraction = pieces.count > 1 ? String(pieces[1]) : ""
        var digits = integer + fraction
        var exponent = integer.count + power
        while digits.first == "0" {
            digits.removeFirst()
            exponent -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        return (digits, exponent)
    }

    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
