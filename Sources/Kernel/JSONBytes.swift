import Foundation

/// Reads JSON straight from a body's bytes, for the ingest paths where Foundation's
/// `JSONDecoder` took a third of the server's CPU (it builds a tree of every value, then decodes
/// the tree, through generic containers). The metrics body reader and `JSONValue(parsing:)` are
/// built on it. It accepts what `JSONDecoder` accepts, with its leniencies (a leading byte-order
/// mark, trailing commas, nesting up to `maximumDepth`), and fails as it does, with a
/// `DecodingError`; tests check that both agree on thousands of mangled bodies.
package struct JSONBytes {
    package let bytes: UnsafeRawBufferPointer
    package var position = 0

    /// Nesting deeper than this is refused, as `JSONDecoder` refuses it.
    package static let maximumDepth = 512
    package static let notJSON = DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "the body is not valid JSON"))

    package init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Calls `read` with a reader at the start of `body`, past a byte-order mark.
    package static func reading<T>(_ body: Data, _ read: (inout JSONBytes) throws -> T) throws -> T {
        try body.withUnsafeBytes { bytes in
            var reader = JSONBytes(bytes: bytes)
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { reader.position = 3 }
            return try read(&reader)
        }
    }

    /// Any value, as a tree (at the value, whitespace skipped).
    package mutating func value(depth: Int = 0) throws -> JSONValue {
        guard depth < Self.maximumDepth else { throw Self.notJSON }
        switch peek() {
        case UInt8(ascii: "\"")?: return .string(try string())
        case UInt8(ascii: "{")?:
            position += 1
            var object: [String: JSONValue] = [:]
            var first = true
            while let key = try nextMember(&first) {
                // The first of repeated keys counts; the others are only scanned, as with JSONDecoder.
                if object[key] == nil { object[key] = try value(depth: depth + 1) } else { try skipValue(depth: depth + 1) }
            }
            return .object(object)
        case UInt8(ascii: "[")?:
            position += 1
            var array: [JSONValue] = []
            var first = true
            while try nextElement(&first) { array.append(try value(depth: depth + 1)) }
            return .array(array)
        case UInt8(ascii: "t")?:
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f")?:
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n")?:
            try literal("null")
            return .null
        default:
            let text = try numberText()
            if let integer = Int64(text) { return .integer(integer) }
            guard let number = Self.double(text) else { throw Self.notJSON }
            // An integer written with a fraction or an exponent (`5.0`, `1e3`) is an integer, as
            // `JSONDecoder` reads it.
            return Int64(exactly: number).map(JSONValue.integer) ?? .number(number)
        }
    }

    /// Positions at the next element of an array (whose opening bracket was read); false after
    /// the closing bracket. `first` is true before the first element.
    package mutating func nextElement(_ first: inout Bool) throws -> Bool {
        try nextItem(&first, closing: UInt8(ascii: "]"))
    }

    /// The next key of an object (whose opening brace was read), positioned at its value;
    /// nil after the closing brace. `first` is true before the first member. Keys of a
    /// skipped object are only scanned (`read: false`, answered as "").
    package mutating func nextMember(_ first: inout Bool, read: Bool = true) throws -> String? {
        guard try nextItem(&first, closing: UInt8(ascii: "}")) else { return nil }
        guard peek() == UInt8(ascii: "\"") else { throw Self.notJSON }
        let key = read ? try string() : try skipString()
        skipWhitespace()
        guard next() == UInt8(ascii: ":") else { throw Self.notJSON }
        skipWhitespace()
        return key
    }

    /// Past the comma before the next item of an array or object (or a trailing comma), or the
    /// `closing` bracket: false after that.
    private mutating func nextItem(_ first: inout Bool, closing: UInt8) throws -> Bool {
        skipWhitespace()
        if first {
            first = false
        } else {
            switch next() {
            case UInt8(ascii: ","): skipWhitespace()
            case closing: return false
            default: throw Self.notJSON
            }
        }
        if peek() == closing {
            position += 1
            return false
        }
        return true
    }

    /// A JSON number's text, checked against JSON's grammar (Swift's `Double(_:)` also
    /// takes `inf`, hex and a leading `+`, which JSON does not).
    package mutating func numberText() throws -> Substring {
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let leading = peek(), Self.isDigit(leading) else { throw Self.notJSON }
        position += 1
        if leading != UInt8(ascii: "0") { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let digit = peek(), Self.isDigit(digit) else { throw Self.notJSON }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard let digit = peek(), Self.isDigit(digit) else { throw Self.notJSON }
            skipDigits()
        }
        return Substring(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    /// The value of a number's text, unless it is out of range: too large is infinite, too
    /// small rounds to zero, and neither is the number sent.
    package static func double(_ text: Substring) -> Double? {
        let mantissa = text.prefix { $0 != "e" && $0 != "E" }
        guard let value = Double(text), value.isFinite, value != 0 || mantissa.allSatisfy({ $0 == "0" || $0 == "-" || $0 == "." }) else { return nil }
        return value
    }

    /// A string (at its opening quote), with its escapes resolved; refuses control
    /// characters, bad escapes and bytes that are not UTF-8.
    package mutating func string() throws -> String {
        position += 1
        let start = position
        var allBytes: UInt8 = 0
        while let byte = peek(), byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw Self.notJSON }
            allBytes |= byte
            position += 1
        }
        guard let stop = peek() else { throw Self.notJSON }
        let text: String?
        if stop == UInt8(ascii: "\""), allBytes < 0x80 {
            // ASCII is valid UTF-8: no validation needed (the common case, and much faster).
            text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        } else if stop == UInt8(ascii: "\"") {
            text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        } else {
            var utf8 = Array(bytes[start..<position])
            try appendEscaped(to: &utf8)
            text = String(validating: utf8, as: UTF8.self)
        }
        position += 1  // the closing quote
        guard let text else { throw Self.notJSON }
        return text
    }

    /// The rest of a string that has an escape, up to (not past) its closing quote.
    private mutating func appendEscaped(to utf8: inout [UInt8]) throws {
        while let byte = next() {
            switch byte {
            case UInt8(ascii: "\""):
                position -= 1
                return
            case UInt8(ascii: "\\"):
                guard let escape = next() else { throw Self.notJSON }
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hexQuad()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard next() == UInt8(ascii: "\\"), next() == UInt8(ascii: "u") else { throw Self.notJSON }
                        let low = try hexQuad()
                        guard (0xDC00..<0xE000).contains(low) else { throw Self.notJSON }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw Self.notJSON }
                    utf8.append(contentsOf: String(Character(unicode)).utf8)
                default: throw Self.notJSON
                }
            default:
                guard byte >= 0x20 else { throw Self.notJSON }
                utf8.append(byte)
            }
        }
        throw Self.notJSON
    }

    private mutating func hexQuad() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = next(), let digit = Self.hexDigit(byte) else { throw Self.notJSON }
            value = value << 4 | digit
        }
        return value
    }

    /// Skips one value of any kind, checking its structure only, as `JSONDecoder` does for
    /// values nobody decodes: a string up to its closing quote, a number's characters.
    package mutating func skipValue(depth: Int) throws {
        guard depth < Self.maximumDepth else { throw Self.notJSON }
        skipWhitespace()
        switch peek() {
        case UInt8(ascii: "\"")?: _ = try skipString()
        case UInt8(ascii: "{")?:
            position += 1
            var first = true
            while try nextMember(&first, read: false) != nil { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "[")?:
            position += 1
            var first = true
            while try nextElement(&first) { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "t")?: try literal("true")
        case UInt8(ascii: "f")?: try literal("false")
        case UInt8(ascii: "n")?: try literal("null")
        default:
            guard let first = peek(), first == UInt8(ascii: "-") || Self.isDigit(first) else { throw Self.notJSON }
            while let byte = peek(), Self.isDigit(byte) || Self.numberSigns.contains(byte) { position += 1 }
        }
    }

    /// Passes a string (at its opening quote) without reading it: an escape covers the byte
    /// after the backslash, or the four after `\u`, none of which may be a quote (as
    /// `JSONDecoder` scans). Answers "".
    private mutating func skipString() throws -> String {
        position += 1
        while let byte = next(), byte != UInt8(ascii: "\"") {
            guard byte == UInt8(ascii: "\\") else { continue }
            if peek() == UInt8(ascii: "u") {
                guard position + 5 <= bytes.count, !bytes[position + 1..<position + 5].contains(UInt8(ascii: "\"")) else { throw Self.notJSON }
                position += 5
            } else {
                position += 1
            }
        }
        guard position <= bytes.count else { throw Self.notJSON }
        return ""
    }

    /// Reads `null` if that is what comes.
    package mutating func null() throws -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: StaticString) throws {
        let length = word.utf8CodeUnitCount
        guard position + length <= bytes.count,
            UnsafeRawBufferPointer(rebasing: bytes[position..<position + length]).elementsEqual(
                UnsafeRawBufferPointer(start: word.utf8Start, count: length))
        else { throw Self.notJSON }
        position += length
    }

    /// Only whitespace is left.
    package mutating func expectEnd() throws {
        skipWhitespace()
        guard position == bytes.count else { throw Self.notJSON }
    }

    package mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    private mutating func skipDigits() {
        while let byte = peek(), Self.isDigit(byte) { position += 1 }
    }

    package func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    package mutating func next() -> UInt8? {
        defer { position += 1 }
        return peek()
    }

    package static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private static let numberSigns: [UInt8] = Array("+-.eE".utf8)
}

extension JSONValue {
    /// A whole JSON document read from its bytes (see `JSONBytes`): what
    /// `JSONDecoder().decode(JSONValue.self, from:)` reads, several times faster.
    package init(parsing body: Data) throws {
        self = try JSONBytes.reading(body) { reader in
            reader.skipWhitespace()
            let value = try reader.value()
            try reader.expectEnd()
            return value
        }
    }

    /// Compact JSON text, object keys sorted, written directly rather than through
    /// `JSONEncoder`'s generic containers (a seventh of the server's time on event ingest).
    package var jsonText: String {
        var text: [UInt8] = []
        write(to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    private func write(to text: inout [UInt8]) {
        switch self {
        case .null: text += "null".utf8
        case .bool(let flag): text += (flag ? "true" : "false").utf8
        case .integer(let number): text += String(number).utf8
        // Swift writes finite doubles as JSON numbers (`0.1`, `5.0`, `1e-05`); the others have no JSON form.
        case .number(let number): text += (number.isFinite ? String(number) : "null").utf8
        case .string(let string): Self.write(string, to: &text)
        case .array(let array):
            text.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                element.write(to: &text)
            }
            text.append(UInt8(ascii: "]"))
        case .object(let object):
            text.append(UInt8(ascii: "{"))
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                Self.write(key, to: &text)
                text.append(UInt8(ascii: ":"))
                object[key]!.write(to: &text)
            }
            text.append(UInt8(ascii: "}"))
        }
    }

    private static func write(_ string: String, to text: inout [UInt8]) {
        text.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += [UInt8(ascii: "\\"), byte]
            case 0x0A: text += "\\n".utf8
            case 0x0D: text += "\\r".utf8
            case 0x09: text += "\\t".utf8
            case ..<0x20:
                let hex = String(byte, radix: 16)
                text += ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8
            default: text.append(byte)
            }
        }
        text.append(UInt8(ascii: "\""))
    }
}
