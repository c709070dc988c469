import Foundation

/// Reads an ingest body, `[{name, value, timestamp?, tags?}, …]`, straight from its bytes into
/// `PointInput`s. Foundation's `JSONDecoder` took about a third of the server's CPU at batches of
/// 1,000 points (it builds a tree of every value, then decodes the tree); this reads each point
/// once. It accepts what `JSONDecoder` accepts for this shape, with its leniencies (a leading
/// byte-order mark, trailing commas, the first of repeated keys, values of other keys only
/// scanned for their end), and fails the same way: as a `DecodingError` with the path of the
/// item and field, so that the answer names them (`DecodingProblem`). A test checks that both
/// agree on thousands of mangled bodies.
enum PointBatchJSON {
    static func decode(_ body: Data) throws -> [PointInput] {
        try body.withUnsafeBytes { bytes in
            var reader = Reader(bytes: bytes)
            return try reader.batch()
        }
    }

    /// A step of a decoding path: an item's index or a field's name.
    struct PathKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) {
            stringValue = String(intValue)
            self.intValue = intValue
        }
    }

    /// Where a value sits: an item, a field of it, a tag of that. Made into a coding path only
    /// when an error names it, so that reading a point builds no path.
    struct Location {
        let index: Int
        var field: String?
        var tag: String?

        func appending(_ key: String) -> Location {
            var location = self
            if field == nil { location.field = key } else { location.tag = key }
            return location
        }

        var codingPath: [any CodingKey] {
            [PathKey(intValue: index)] + [field, tag].compactMap { $0.map(PathKey.init(stringValue:)) }
        }
    }

    /// Nesting deeper than this in a skipped value is refused, as `JSONDecoder` refuses it.
    static let maximumDepth = 512

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func batch() throws -> [PointInput] {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
            skipWhitespace()
            guard peek() == UInt8(ascii: "[") else {
                // Valid JSON of another shape is a type mismatch; anything else is not JSON.
                try skipValue(depth: 0)
                try expectEnd()
                throw DecodingError.typeMismatch([PointInput].self, .init(codingPath: [], debugDescription: "expected an array"))
            }
            position += 1
            var points: [PointInput] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                position += 1
                try expectEnd()
                return points
            }
            while true {
                points.append(try point(index: points.count))
                skipWhitespace()
                switch next() {
                case UInt8(ascii: ","):
                    skipWhitespace()
                    guard peek() == UInt8(ascii: "]") else { continue }
                    position += 1
                    try expectEnd()
                    return points
                case UInt8(ascii: "]"):
                    try expectEnd()
                    return points
                default: throw Self.notJSON
                }
            }
        }

        mutating func point(index: Int) throws -> PointInput {
            let path = Location(index: index)
            guard peek() == UInt8(ascii: "{") else {
                try skipValue(depth: 1)
                throw DecodingError.typeMismatch(PointInput.self, .init(codingPath: path.codingPath, debugDescription: "expected an object"))
            }
            position += 1
            var name: String?
            var value: Double?
            var timestamp: String?
            var tags: [String: String]?
            // The first of repeated keys counts, as with JSONDecoder.
            var seenTimestamp = false
            var seenTags = false
            var first = true
            while let key = try nextMember(&first) {
                let field = path.appending(key)
                switch key {
                case "name" where name == nil: name = try requiredString(at: field)
                case "value" where value == nil: value = try number(at: field)
                case "timestamp" where !seenTimestamp:
                    timestamp = try optionalString(at: field)
                    seenTimestamp = true
                case "tags" where !seenTags:
                    tags = try tagObject(at: field)
                    seenTags = true
                default: try skipValue(depth: 2)
                }
            }
            guard let name else { throw DecodingError.keyNotFound(PathKey(stringValue: "name"), .init(codingPath: path.codingPath, debugDescription: "")) }
            guard let value else { throw DecodingError.keyNotFound(PathKey(stringValue: "value"), .init(codingPath: path.codingPath, debugDescription: "")) }
            return PointInput(name: name, value: value, timestamp: timestamp, tags: tags)
        }

        /// The next key of an object (whose opening brace was read), positioned at its value;
        /// nil after the closing brace. `first` is true before the first member. Keys of a
        /// skipped object are only scanned (`read: false`, answered as "").
        mutating func nextMember(_ first: inout Bool, read: Bool = true) throws -> String? {
            skipWhitespace()
            if first {
                first = false
                if peek() == UInt8(ascii: "}") {
                    position += 1
                    return nil
                }
            } else {
                switch next() {
                case UInt8(ascii: ","):
                    skipWhitespace()
                    if peek() == UInt8(ascii: "}") {
                        position += 1
                        return nil
                    }
                case UInt8(ascii: "}"): return nil
                default: throw Self.notJSON
                }
            }
            guard peek() == UInt8(ascii: "\"") else { throw Self.notJSON }
            let key = read ? try string() : try skipString()
            skipWhitespace()
            guard next() == UInt8(ascii: ":") else { throw Self.notJSON }
            skipWhitespace()
            return key
        }

        mutating func tagObject(at path: Location) throws -> [String: String]? {
            if try null() { return nil }
            guard peek() == UInt8(ascii: "{") else {
                try skipValue(depth: 3)
                throw DecodingError.typeMismatch([String: String].self, .init(codingPath: path.codingPath, debugDescription: "expected an object of strings"))
            }
            position += 1
            var tags: [String: String] = [:]
            var first = true
            while let key = try nextMember(&first) {
                let tag = try requiredString(at: path.appending(key))
                if tags[key] == nil { tags[key] = tag }
            }
            return tags
        }

        mutating func requiredString(at path: Location) throws -> String {
            guard let text = try optionalString(at: path) else {
                throw DecodingError.valueNotFound(String.self, .init(codingPath: path.codingPath, debugDescription: ""))
            }
            return text
        }

        mutating func optionalString(at path: Location) throws -> String? {
            if try null() { return nil }
            guard peek() == UInt8(ascii: "\"") else {
                try skipValue(depth: 3)
                throw DecodingError.typeMismatch(String.self, .init(codingPath: path.codingPath, debugDescription: "expected a string"))
            }
            return try string()
        }

        mutating func number(at path: Location) throws -> Double {
            if try null() { throw DecodingError.valueNotFound(Double.self, .init(codingPath: path.codingPath, debugDescription: "")) }
            guard let first = peek(), first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
                try skipValue(depth: 3)
                throw DecodingError.typeMismatch(Double.self, .init(codingPath: path.codingPath, debugDescription: "expected a number"))
            }
            let text = try numberText()
            // Too large is infinite; too small rounds to zero: neither is the number sent.
            let mantissa = text.prefix { $0 != "e" && $0 != "E" }
            guard let value = Double(text), value.isFinite, value != 0 || mantissa.allSatisfy({ $0 == "0" || $0 == "-" || $0 == "." }) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path.codingPath, debugDescription: "the number \(text) is out of range"))
            }
            return value
        }

        /// A JSON number's text, checked against JSON's grammar (Swift's `Double(_:)` also
        /// takes `inf`, hex and a leading `+`, which JSON does not).
        mutating func numberText() throws -> Substring {
            let start = position
            if peek() == UInt8(ascii: "-") { position += 1 }
            guard let leading = peek(), isDigit(leading) else { throw Self.notJSON }
            position += 1
            if leading != UInt8(ascii: "0") { skipDigits() }
            if peek() == UInt8(ascii: ".") {
                position += 1
                guard let digit = peek(), isDigit(digit) else { throw Self.notJSON }
                skipDigits()
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                position += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
                guard let digit = peek(), isDigit(digit) else { throw Self.notJSON }
                skipDigits()
            }
            return Substring(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        }

        /// A string (at its opening quote), with its escapes resolved; refuses control
        /// characters, bad escapes and bytes that are not UTF-8.
        mutating func string() throws -> String {
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
        mutating func appendEscaped(to utf8: inout [UInt8]) throws {
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

        mutating func hexQuad() throws -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = next(), let digit = hexDigit(byte) else { throw Self.notJSON }
                value = value << 4 | digit
            }
            return value
        }

        /// Skips one value of any kind, checking its structure only, as `JSONDecoder` does for
        /// values nobody decodes: a string up to its closing quote, a number's characters.
        mutating func skipValue(depth: Int) throws {
            guard depth < maximumDepth else { throw Self.notJSON }
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: "\"")?: _ = try skipString()
            case UInt8(ascii: "{")?:
                position += 1
                var first = true
                while try nextMember(&first, read: false) != nil { try skipValue(depth: depth + 1) }
            case UInt8(ascii: "[")?:
                position += 1
                skipWhitespace()
                if peek() == UInt8(ascii: "]") {
                    position += 1
                    return
                }
                while true {
                    try skipValue(depth: depth + 1)
                    skipWhitespace()
                    switch next() {
                    case UInt8(ascii: ","):
                        skipWhitespace()
                        guard peek() == UInt8(ascii: "]") else { continue }
                        position += 1
                        return
                    case UInt8(ascii: "]"): return
                    default: throw Self.notJSON
                    }
                }
            case UInt8(ascii: "t")?: try literal("true")
            case UInt8(ascii: "f")?: try literal("false")
            case UInt8(ascii: "n")?: try literal("null")
            default:
                guard let first = peek(), first == UInt8(ascii: "-") || isDigit(first) else { throw Self.notJSON }
                while let byte = peek(), isDigit(byte) || Self.numberSigns.contains(byte) { position += 1 }
            }
        }

        /// Passes a string (at its opening quote) without reading it: an escape covers the
        /// byte after the backslash, or the four after `\u`. Answers "".
        mutating func skipString() throws -> String {
            position += 1
            while let byte = next(), byte != UInt8(ascii: "\"") {
                if byte == UInt8(ascii: "\\") { position += peek() == UInt8(ascii: "u") ? 5 : 1 }
            }
            guard position <= bytes.count else { throw Self.notJSON }
            return ""
        }

        /// Reads `null` if that is what comes.
        mutating func null() throws -> Bool {
            guard peek() == UInt8(ascii: "n") else { return false }
            try literal("null")
            return true
        }

        mutating func literal(_ word: StaticString) throws {
            let length = word.utf8CodeUnitCount
            guard position + length <= bytes.count,
                UnsafeRawBufferPointer(rebasing: bytes[position..<position + length]).elementsEqual(
                    UnsafeRawBufferPointer(start: word.utf8Start, count: length))
            else { throw Self.notJSON }
            position += length
        }

        mutating func expectEnd() throws {
            skipWhitespace()
            guard position == bytes.count else { throw Self.notJSON }
        }

        mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        mutating func skipDigits() {
            while let byte = peek(), isDigit(byte) { position += 1 }
        }

        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func next() -> UInt8? {
            defer { position += 1 }
            return peek()
        }

        func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

        func hexDigit(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }

        static let numberSigns: [UInt8] = Array("+-.eE".utf8)
        static let notJSON = DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "the body is not valid JSON"))
    }
}
