import Foundation
import Testing

@testable import PulseboardKernel

/// `JSONValue(parsing:)` and `jsonText` against Foundation's `JSONDecoder`, which they replace on
/// the event ingest path: the same values from the same documents, the same refusals, and text
/// that Foundation reads back as the value written.
@Suite("JSON from bytes")
struct JSONBytesTests {
    /// A document as clients write them and as they might: numbers in every JSON form, escapes,
    /// non-ASCII text, nesting, nulls, repeated keys, odd whitespace.
    static func randomDocument(_ generator: inout some RandomNumberGenerator, depth: Int = 0) -> String {
        let numbers = [
            "0", "-0", "21.5", "-7", "1e3", "2.5E-3", "123456789012345678901234567890", "0.1", "-1.25e+2", "42", "9223372036854775807", "9223372036854775808",
        ]
        let strings = [#""cpu""#, #""caf\u00e9""#, #""a\"b\\c\/d""#, #""\ud83d\ude00 ok""#, #""tab\there\n""#, "\"héllo チームA\"", #""""#, #""\u0001""#]
        let spaces = ["", " ", "\n", "\t", "\r\n  "]
        func space() -> String { spaces.randomElement(using: &generator)! }
        switch Int.random(in: 0..<(depth < 3 ? 6 : 4), using: &generator) {
        case 0: return numbers.randomElement(using: &generator)!
        case 1: return strings.randomElement(using: &generator)!
        case 2: return ["true", "false", "null"].randomElement(using: &generator)!
        case 3: return strings.randomElement(using: &generator)!
        case 4:
            let elements = (0..<Int.random(in: 0...4, using: &generator)).map { _ in space() + randomDocument(&generator, depth: depth + 1) + space() }
            return "[" + elements.joined(separator: ",") + "]"
        default:
            let keys = ["eventId", "emailAddress", "cellIndex", "a", "caf\\u00e9", "eventId"]
            let members = (0..<Int.random(in: 0...5, using: &generator)).map { _ in
                "\"" + keys.randomElement(using: &generator)! + "\"" + space() + ":" + space() + randomDocument(&generator, depth: depth + 1)
            }
            return "{" + space() + members.joined(separator: space() + "," + space()) + space() + "}"
        }
    }

    static func foundation(_ body: Data) -> JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: body) }

    /// Equal, numbers to a double's precision: past 2^53 the two round some numbers written
    /// with a fraction or an exponent differently (`9223372036854775.807`).
    static func same(_ one: JSONValue, _ other: JSONValue) -> Bool {
        func number(_ value: JSONValue) -> Double? {
            switch value {
            case .integer(let integer): Double(integer)
            case .number(let number): number
            default: nil
            }
        }
        switch (one, other) {
        case (.integer(let a), .integer(let b)) where a == b: return true
        case (.integer, _), (.number, _):
            guard let a = number(one), let b = number(other) else { return false }
            return abs(a - b) <= max(abs(a), abs(b)) * 4 * .ulpOfOne
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy(same)
        case (.object(let a), .object(let b)): return a.count == b.count && a.allSatisfy { key, value in b[key].map { same(value, $0) } ?? false }
        default: return one == other
        }
    }

    @Test func readsWhatJSONDecoderReads() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let body = Data(Self.randomDocument(&generator).utf8)
            let expected = try #require(Self.foundation(body), "\(String(decoding: body, as: UTF8.self))")
            #expect(try JSONValue(parsing: body) == expected, "\(String(decoding: body, as: UTF8.self))")
        }
    }

    /// Mangled documents (bytes dropped, doubled, replaced by JSON's own characters or by bytes
    /// that are not UTF-8): accepted exactly when Foundation accepts them, with the same value.
    @Test func refusesWhatJSONDecoderRefuses() {
        var generator = SystemRandomNumberGenerator()
        let replacements = Array(#"{}[]":,\ .-+e0719nultrfas"#.utf8) + [0xFF, 0xC3, 0x00, 0x0A]
        var refused = 0
        for _ in 0..<5_000 {
            var body = Array(Self.randomDocument(&generator).utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) where !body.isEmpty {
                let at = Int.random(in: 0..<body.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: body.remove(at: at)
                case 1: body.insert(body[at], at: at)
                default: body[at] = replacements.randomElement(using: &generator)!
                }
            }
            let text = String(decoding: body, as: UTF8.self)
            switch (Self.foundation(Data(body)), try? JSONValue(parsing: Data(body))) {
            case (let expected?, let read?): #expect(Self.same(read, expected), "\(text.debugDescription)")
            case (nil, nil): refused += 1
            case (nil, _?) where text.contains(/(^|[^0-9.])-?0[eE][+-]?[1-9]/):
                // Foundation refuses 0e1 (and takes 0e0, 0E+1 and -0e-1); JSON allows it.
                continue
            case (_?, nil) where body.contains(0):
                // Foundation takes a number next to a NUL byte (`2\0`) as the number; JSON does not.
                continue
            case (_?, nil) where text.contains(/[eE][+-]?[0-9]{3,}/):
                // Out of a double's range: refused, as the metrics reader refuses it; Foundation
                // reads some of these as 0.
                continue
            case (let expected, let read):
                Issue.record("Foundation: \(String(describing: expected)), ours: \(String(describing: read)), body: \(text.debugDescription)")
            }
        }
        #expect(refused > 1_000)
    }

    /// An integral double written out comes back as an integer: `5.0` is read as 5, by both.
    @Test func integralNumbersAreIntegers() throws {
        #expect(try JSONValue(parsing: Data(JSONValue.number(5).jsonText.utf8)) == .integer(5))
        #expect(Self.foundation(Data(JSONValue.number(5).jsonText.utf8)) == .integer(5))
        for (text, integer) in [("1e3", 1000), ("-1.25e+2", -125), ("0.0", 0), ("-0", 0), ("120e-1", 12)] as [(String, Int64)] {
            #expect(try JSONValue(parsing: Data(text.utf8)) == .integer(integer), "\(text)")
            #expect(Self.foundation(Data(text.utf8)) == .integer(integer), "\(text)")
        }
    }

    @Test func deepNestingIsRefused() {
        #expect(throws: DecodingError.self) {
            try JSONValue(parsing: Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8))
        }
        #expect((try? JSONValue(parsing: Data((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8))) != nil)
    }

    /// What `jsonText` writes, Foundation reads back as the value written: every control
    /// character, quotes, backslashes, non-ASCII text, and numbers of every size.
    @Test func writtenTextReadsBackAsTheValue() throws {
        var generator = SystemRandomNumberGenerator()
        let awkward: JSONValue = [
            "controls": .string(String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self)),
            "quotes": "\"\\/ チームA 😀",
            "numbers": .array([.number(0.1), .number(-1e-300), .number(1.7976931348623157e308), .number(5.5), .integer(.min + 1), .integer(.max)]),
            "nothing": .null, "flag": false,
        ]
        #expect(Self.foundation(Data(awkward.jsonText.utf8)) == awkward)
        for _ in 0..<1_000 {
            let value = try JSONValue(parsing: Data(Self.randomDocument(&generator).utf8))
            #expect(Self.foundation(Data(value.jsonText.utf8)) == value, "\(value.jsonText)")
        }
        #expect(JSONValue.object(["b": 1, "a": .array([true, .null])]).jsonText == #"{"a":[true,null],"b":1}"#)
    }
}
