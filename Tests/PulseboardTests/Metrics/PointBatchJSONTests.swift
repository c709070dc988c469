import Foundation
import Testing

@testable import PulseboardHTTP
@testable import PulseboardMetrics

/// The ingest body reader against Foundation's `JSONDecoder`, which it replaces on the hot path:
/// the same points from the same bodies, the same refusals, the same item and field named.
@Suite("Ingest body reader")
struct PointBatchJSONTests {
    /// A refusal, as the answer would name it.
    struct Refusal: Error {
        var index: Int?
        var field: String?
        var message: String

        init(_ problem: DecodingProblem) {
            (index, field, message) = (problem.index, problem.field, problem.message)
        }
    }

    static func foundation(_ body: Data) -> Result<[PointInput], Refusal> {
        do {
            return .success(try JSONDecoder().decode([PointInput].self, from: body))
        } catch let error as DecodingError {
            return .failure(Refusal(DecodingProblem(error)))
        } catch {
            Issue.record("not a DecodingError: \(error)")
            return .success([])
        }
    }

    static func ours(_ body: Data) -> Result<[PointInput], Refusal> {
        do {
            return .success(try PointBatchJSON.decode(body))
        } catch let error as DecodingError {
            return .failure(Refusal(DecodingProblem(error)))
        } catch {
            Issue.record("not a DecodingError: \(error)")
            return .success([])
        }
    }

    /// A batch as clients write it, and as they might: numbers in every JSON form, escapes,
    /// non-ASCII text, nulls, keys of their own with nested values, odd whitespace.
    static func randomBatch(_ generator: inout some RandomNumberGenerator) -> String {
        let numbers = ["0", "-0", "21.5", "-7", "1e3", "2.5E-3", "123456789012345678901234567890", "0.1", "-1.25e+2", "42"]
        let strings = [#""cpu""#, #""sensor.temp""#, #""caf\u00e9""#, #""a\"b\\c\/d""#, #""\ud83d\ude00 ok""#, #""tab\there""#, "\"héllo\"", #""""#]
        let extras = [#""unit":"°C""#, #""meta":{"a":[1,2,{"b":null}],"c":true}"#, #""list":[]"#, #""flag":false"#, #""n":null"#]
        let spaces = ["", " ", "\n", "\t", "\r\n  "]
        func space() -> String { spaces.randomElement(using: &generator)! }
        let items = (0..<Int.random(in: 0...6, using: &generator)).map { _ in
            var members = [
                #""name":"# + space() + strings.randomElement(using: &generator)!,
                #""value":"# + space() + numbers.randomElement(using: &generator)!,
            ]
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: members.append(#""timestamp":"2026-12-04T10:00:00.000Z""#)
            case 1: members.append(#""timestamp":null"#)
            default: break
            }
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: members.append(#""tags":{"host":"h1","room":"caf\u00e9"}"#)
            case 1: members.append(#""tags":null"#)
            default: break
            }
            if Bool.random(using: &generator) { members.append(extras.randomElement(using: &generator)!) }
            members.shuffle(using: &generator)
            return "{" + space() + members.joined(separator: space() + "," + space()) + space() + "}"
        }
        return space() + "[" + items.joined(separator: "," + space()) + "]" + space()
    }

    @Test func readsWhatJSONDecoderReads() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let body = Data(Self.randomBatch(&generator).utf8)
            let expected = try JSONDecoder().decode([PointInput].self, from: body)
            #expect(try PointBatchJSON.decode(body) == expected, "\(String(decoding: body, as: UTF8.self))")
        }
    }

    /// Mangled bodies (bytes dropped, doubled, replaced by JSON's own characters or by bytes
    /// that are not UTF-8): accepted exactly when Foundation accepts them, with the same points
    /// (but for one quirk of Foundation's, below).
    @Test func refusesWhatJSONDecoderRefuses() {
        var generator = SystemRandomNumberGenerator()
        let replacements = Array(#"{}[]":,\ .-+e0719nultrfas"#.utf8) + [0xFF, 0xC3, 0x00, 0x0A]
        var refused = 0
        for _ in 0..<5_000 {
            var body = Array(Self.randomBatch(&generator).utf8)
            guard !body.isEmpty else { continue }
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<body.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: body.remove(at: at)
                case 1: body.insert(body[at], at: at)
                default: body[at] = replacements.randomElement(using: &generator)!
                }
                if body.isEmpty { break }
            }
            let data = Data(body)
            switch (Self.foundation(data), Self.ours(data)) {
            case (.success(let expected), .success(let read)):
                #expect(read == expected, "\(String(decoding: body, as: UTF8.self))")
            case (.failure, .failure):
                refused += 1
            case (.failure, .success) where String(decoding: body, as: UTF8.self).contains(/[^0-9.]0[eE][1-9]/):
                // Foundation refuses 0e1 (and takes 0e0, 0E+1 and -0e-1); JSON allows it.
                continue
            case (let expected, let read):
                Issue.record("Foundation: \(expected), ours: \(read), body: \(String(decoding: body, as: UTF8.self).debugDescription)")
            }
        }
        #expect(refused > 250)
    }

    /// Nesting without end in a value nobody reads is refused, not followed down the stack.
    @Test func deepNestingIsRefused() {
        let deep = #"[{"name":"x","value":1,"x":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}]"
        #expect(throws: DecodingError.self) { try PointBatchJSON.decode(Data(deep.utf8)) }
        let fine = #"[{"name":"x","value":1,"x":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}]"
        #expect((try? PointBatchJSON.decode(Data(fine.utf8)))?.count == 1)
    }

    /// Bodies of the right syntax and a wrong shape name the same item and field.
    @Test func namesTheSameItemAndField() {
        let bodies = [
            #"{"name":"x","value":1}"#, #"[{"name":"ok","value":1},{"name":"x","value":"high"}]"#, #"[{"name":"x","value":1,"tags":{"a":1}}]"#,
            #"[{"value":1}]"#, #"[{"name":"x"}]"#, #"[{"name":null,"value":1}]"#, #"[{"name":"x","value":null}]"#, #"[1]"#,
            #"[{"name":"x","value":1,"tags":[]}]"#, #"[{"name":"x","value":1,"timestamp":5}]"#, #"[{"name":"x","value":true}]"#, "",
        ]
        for body in bodies {
            guard case .failure(let expected) = Self.foundation(Data(body.utf8)), case .failure(let read) = Self.ours(Data(body.utf8)) else {
                Issue.record("both should refuse \(body)")
                continue
            }
            #expect(read.index == expected.index && read.field == expected.field, "\(body): \(read.message) / \(expected.message)")
        }
    }
}
