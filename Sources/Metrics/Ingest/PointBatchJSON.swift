import Foundation
import PulseboardKernel

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
        try JSONBytes.reading(body) { try $0.batch() }
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

}

extension JSONBytes {
    fileprivate typealias Location = PointBatchJSON.Location
    fileprivate typealias PathKey = PointBatchJSON.PathKey

    fileprivate mutating func batch() throws -> [PointInput] {
        skipWhitespace()
        guard peek() == UInt8(ascii: "[") else {
            // Valid JSON of another shape is a type mismatch; anything else is not JSON.
            try skipValue(depth: 0)
            try expectEnd()
            throw DecodingError.typeMismatch([PointInput].self, .init(codingPath: [], debugDescription: "expected an array"))
        }
        position += 1
        var points: [PointInput] = []
        var first = true
        while try nextElement(&first) { points.append(try point(index: points.count)) }
        try expectEnd()
        return points
    }

    fileprivate mutating func point(index: Int) throws -> PointInput {
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

    fileprivate mutating func tagObject(at path: Location) throws -> [String: String]? {
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

    fileprivate mutating func requiredString(at path: Location) throws -> String {
        guard let text = try optionalString(at: path) else {
            throw DecodingError.valueNotFound(String.self, .init(codingPath: path.codingPath, debugDescription: ""))
        }
        return text
    }

    fileprivate mutating func optionalString(at path: Location) throws -> String? {
        if try null() { return nil }
        guard peek() == UInt8(ascii: "\"") else {
            try skipValue(depth: 3)
            throw DecodingError.typeMismatch(String.self, .init(codingPath: path.codingPath, debugDescription: "expected a string"))
        }
        return try string()
    }

    fileprivate mutating func number(at path: Location) throws -> Double {
        if try null() { throw DecodingError.valueNotFound(Double.self, .init(codingPath: path.codingPath, debugDescription: "")) }
        guard let first = peek(), first == UInt8(ascii: "-") || Self.isDigit(first) else {
            try skipValue(depth: 3)
            throw DecodingError.typeMismatch(Double.self, .init(codingPath: path.codingPath, debugDescription: "expected a number"))
        }
        let text = try numberText()
        guard let value = Self.double(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path.codingPath, debugDescription: "the number \(text) is out of range"))
        }
        return value
    }
}
