import Foundation

/// The tokens of a PromQL expression.
enum Token: Equatable {
    case identifier(String)
    case number(Double)
    /// In milliseconds (`5m`, `1h30m`, `500ms`).
    case duration(Int64)
    case string(String)
    /// Operators and punctuation: `+ - * / % ^ == != > < >= <= = =~ !~ ( ) { } [ ] , :` and `@`.
    case symbol(String)
    case end

    var text: String {
        switch self {
        case .identifier(let name): name
        case .number(let value): "\(value)"
        case .duration(let ms): "\(ms)ms"
        case .string(let text): "\"\(text)\""
        case .symbol(let symbol): symbol
        case .end: "end of input"
        }
    }
}

/// Splits a query into tokens. Numbers and durations are told apart as Prometheus does: digits
/// followed by a unit (`s m h d w y ms`) are a duration.
struct Lexer {
    private let scalars: [Unicode.Scalar]
    private var position = 0

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
    }

    static func tokens(_ text: String) throws(PromQLError) -> [Token] {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token == .end { return tokens }
        }
    }

    private var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }
    private func peek(_ offset: Int) -> Unicode.Scalar? { position + offset < scalars.count ? scalars[position + offset] : nil }

    mutating func next() throws(PromQLError) -> Token {
        while let scalar = peek, [" ", "\t", "\n", "\r"].contains(scalar) { position += 1 }
        if peek == "#" {  // a comment runs to the end of the line
            while let scalar = peek, scalar != "\n" { position += 1 }
            return try next()
        }
        guard let scalar = peek else { return .end }
        if Self.isDigit(scalar) || (scalar == "." && peek(1).map(Self.isDigit) == true) {
            return try numberOrDuration()
        }
        if Self.isAlpha(scalar) || scalar == ":" {
            let start = position
            while let next = peek, Self.isAlpha(next) || Self.isDigit(next) || next == ":" { position += 1 }
            let word = String(String.UnicodeScalarView(scalars[start..<position]))
            switch word.lowercased() {
            case "inf": return .number(.infinity)
            case "nan": return .number(.nan)
            default: return .identifier(word)
            }
        }
        if scalar == "\"" || scalar == "'" || scalar == "`" { return .string(try string()) }
        for symbol in ["==", "!=", ">=", "<=", "=~", "!~"] where matches(symbol) {
            position += 2
            return .symbol(symbol)
        }
        if "+-*/%^=><(){}[],:@".unicodeScalars.contains(scalar) {
            position += 1
            return .symbol(String(scalar))
        }
        throw .badData("unexpected character: '\(scalar)'")
    }

    private func matches(_ symbol: String) -> Bool {
        symbol.unicodeScalars.enumerated().allSatisfy { peek($0.offset) == $0.element }
    }

    private mutating func numberOrDuration() throws(PromQLError) -> Token {
        let start = position
        // A duration: groups of digits and a unit, largest first (1h30m).
        var milliseconds: Int64 = 0
        var isDuration = false
        while let digit = peek, Self.isDigit(digit) {
            let digitsStart = position
            while let next = peek, Self.isDigit(next) { position += 1 }
            guard let unit = durationUnit() else {
                position = start
                isDuration = false
                break
            }
            let digits = String(String.UnicodeScalarView(scalars[digitsStart..<position - unit.length]))
            // At most Prometheus's longest duration (Go's, about 292 years).
            guard let value = Int64(digits), case let (scaled, false) = value.multipliedReportingOverflow(by: unit.milliseconds),
                case let (sum, false) = milliseconds.addingReportingOverflow(scaled), sum <= Self.longestDurationMs
            else { throw .badData("duration out of range") }
            milliseconds = sum
            isDuration = true
        }
        if isDuration {
            if let next = peek, Self.isAlpha(next) || Self.isDigit(next) {
                throw .badData("bad duration syntax: \"\(String(String.UnicodeScalarView(scalars[start...position])))\"")
            }
            return .duration(milliseconds)
        }
        position = start
        var hex = false
        if peek == "0", peek(1) == "x" || peek(1) == "X" {
            position += 2
            hex = true
        }
        while let next = peek, Self.isDigit(next) || (hex && next.properties.isASCIIHexDigit) { position += 1 }
        if !hex, peek == "." {
            position += 1
            while let next = peek, Self.isDigit(next) { position += 1 }
        }
        if !hex, peek == "e" || peek == "E" {
            position += 1
            if peek == "+" || peek == "-" { position += 1 }
            while let next = peek, Self.isDigit(next) { position += 1 }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        if let next = peek, Self.isAlpha(next) || Self.isDigit(next) {
            throw .badData("bad number or duration syntax: \"\(text)\(next)\"")
        }
        let value = hex ? Int64(text.dropFirst(2), radix: 16).map(Double.init) : Double(text)
        guard let value else { throw .badData("bad number syntax: \"\(text)\"") }
        return .number(value)
    }

    /// The unit after a duration's digits, consumed: ms, s, m, h, d, w, y.
    private mutating func durationUnit() -> (length: Int, milliseconds: Int64)? {
        if peek == "m", peek(1) == "s" {
            position += 2
            return (2, 1)
        }
        let units: [Unicode.Scalar: Int64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000]
        guard let scalar = peek, let milliseconds = units[scalar] else { return nil }
        position += 1
        return (1, milliseconds)
    }

    /// A string in double or single quotes (with Go's escapes) or backticks (raw).
    private mutating func string() throws(PromQLError) -> String {
        let quote = scalars[position]
        position += 1
        var text = String.UnicodeScalarView()
        while let scalar = peek {
            position += 1
            if scalar == quote { return String(text) }
            guard quote != "`", scalar == "\\" else {
                text.append(scalar)
                continue
            }
            guard let escaped = peek else { break }
            position += 1
            switch escaped {
            case "n": text.append("\n")
            case "t": text.append("\t")
            case "r": text.append("\r")
            case "a": text.append("\u{07}")
            case "b": text.append("\u{08}")
            case "f": text.append("\u{0C}")
            case "v": text.append("\u{0B}")
            case "\\", "\"", "'": text.append(escaped)
            case "u", "U", "x":
                let length = escaped == "u" ? 4 : escaped == "U" ? 8 : 2
                let digits = String(String.UnicodeScalarView(scalars[position..<min(position + length, scalars.count)]))
                guard digits.count == length, let code = UInt32(digits, radix: 16), let decoded = Unicode.Scalar(code) else {
                    throw .badData("invalid escape sequence in string")
                }
                position += length
                text.append(decoded)
            default: throw .badData("unknown escape sequence '\\\(escaped)'")
            }
        }
        throw .badData("unterminated quoted string")
    }

    static let longestDurationMs: Int64 = 9_223_372_036_854

    static func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }
    static func isAlpha(_ scalar: Unicode.Scalar) -> Bool { scalar == "_" || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }
}
