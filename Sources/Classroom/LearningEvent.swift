import Foundation
import PulseboardKernel

/// One event from a student's JupyterLab (the cell-monitor extension's format, source document
/// 004). Every field but the id, type and time is optional; `payload` is the event as received
/// (its very text, when it had an id and a time and nothing was dropped; otherwise re-written
/// with `eventId` and `eventTime` filled in), so the raw stream can be replayed and exported.
/// `type` is the extension's name for it (`EventParser.synonyms`); `email` identifies the
/// student: the `emailAddress`, or else the `userId` of the source documents' own clients.
public struct LearningEvent: Sendable, Equatable {
    public var classID: Int64
    public var eventID: String
    public var type: String
    public var timeMs: Int64
    /// Lower-cased; events without one are kept in the raw stream only.
    public var email: String?
    public var userName: String?
    public var teamName: String?
    public var sessionID: String?
    public var notebookPath: String?
    public var cellID: String?
    public var cellIndex: Int64?
    public var cellType: String?
    public var code: String?
    public var executionCount: Int64?
    public var hasError: Bool?
    public var errorMessage: String?
    public var durationMs: Double?
    public var payload: String
    /// The trace id of the request that brought it, for the task log's steps of applying it.
    public var traceID: String? = nil
}

/// Reads the extension's request bodies leniently: the extension counts any answer below 500 as
/// delivered and never resends, so a field of the wrong type is dropped (and counted) rather than
/// the event refused. Only a body that is not JSON, not an object or array, or too large is refused.
package enum EventParser {
    static let maxEvents = 1_000

    /// Other names of the extension's events: those of the source documents (004) and older
    /// versions of the extension, with whether the name says the cell failed.
    static let synonyms: [String: (type: String, failed: Bool?)] = [
        "cell_execution": ("cell_executed", nil),
        "cell_execution_complete": ("cell_executed", nil),
        "cell_execution_error": ("cell_executed", true),
        "cell_error": ("cell_executed", true),
        "notebook_save": ("notebook_saved", nil),
    ]

    struct Parsed {
        var events: [LearningEvent]
        /// Array elements that were not objects (nothing of them can be stored).
        var ignored: Int
        var droppedFields: Int
    }

    enum Failure: Error, Equatable {
        case notJSON
        case notAnObjectOrArray
        case tooManyEvents(Int)
    }

    static func parse(_ body: Data, classID: Int64, arrival: Date) throws(Failure) -> Parsed {
        // The body's events, each with its text as sent (stored as its payload when nothing of
        // it was dropped or filled in); nil when the body is JSON but neither array nor object.
        let read: [(value: JSONValue, text: String)]?
        do {
            read = try JSONBytes.reading(body) { reader in
                reader.skipWhitespace()
                var elements: [(value: JSONValue, text: String)] = []
                let isArray = reader.peek() == UInt8(ascii: "[")
                if isArray {
                    reader.position += 1
                    var first = true
                    while try reader.nextElement(&first) { elements.append(try Self.element(&reader)) }
                } else {
                    elements.append(try Self.element(&reader))
                }
                try reader.expectEnd()
                if !isArray {
                    guard case .object = elements[0].value else { return nil }
                }
                return elements
            }
        } catch {
            throw .notJSON
        }
        guard let elements = read else { throw .notAnObjectOrArray }
        guard elements.count <= maxEvents else { throw .tooManyEvents(elements.count) }
        var parsed = Parsed(events: [], ignored: 0, droppedFields: 0)
        for element in elements {
            guard case .object(let object) = element.value else {
                parsed.ignored += 1
                continue
            }
            var reader = FieldReader(object: object)
            parsed.events.append(reader.event(classID: classID, arrival: arrival, sent: element.text))
            parsed.droppedFields += reader.dropped
        }
        return parsed
    }

    /// One value of the body, with its text as sent.
    private static func element(_ reader: inout JSONBytes) throws -> (value: JSONValue, text: String) {
        let start = reader.position
        let value = try reader.value()
        return (value, String(decoding: UnsafeRawBufferPointer(rebasing: reader.bytes[start..<reader.position]), as: UTF8.self))
    }

    /// The event again from its stored payload (to apply events left unprocessed by a crash).
    static func event(from object: [String: JSONValue], classID: Int64, receivedAt: Date) -> LearningEvent {
        var reader = FieldReader(object: object)
        return reader.event(classID: classID, arrival: receivedAt)
    }

    private struct FieldReader {
        var object: [String: JSONValue]
        var dropped = 0

        /// The event; `sent` is its text as sent, kept as its payload when nothing was dropped
        /// and its id and time were there as they are stored.
        mutating func event(classID: Int64, arrival: Date, sent: String? = nil) -> LearningEvent {
            let eventID = string("eventId").flatMap { $0.isEmpty ? nil : String($0.prefix(200)) } ?? UUID().uuidString.lowercased()
            let sentTime = string("eventTime").flatMap { Timestamp.parse($0)?.millisecondsSince1970 }
            let time = sentTime ?? arrival.millisecondsSince1970
            let sentType = string("eventType").flatMap { $0.isEmpty ? nil : String($0.prefix(100)) } ?? "unknown"
            let (type, failedByName) = EventParser.synonyms[sentType] ?? (sentType, nil)
            let identifier = string("emailAddress") ?? string("userId")
            var event = LearningEvent(
                classID: classID,
                eventID: eventID,
                type: type,
                timeMs: time,
                email: identifier.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.flatMap { $0.isEmpty ? nil : $0 },
                userName: string("userName"),
                teamName: string("teamName"),
                sessionID: string("sessionId"),
                notebookPath: string("notebookPath"),
                cellID: string("cellId"),
                cellIndex: integer("cellIndex"),
                cellType: string("cellType"),
                code: string("code"),
                executionCount: integer("executionCount"),
                hasError: boolean("hasError") ?? boolean("success").map { !$0 } ?? failedByName,
                errorMessage: string("errorMessage"),
                durationMs: number("executionDurationMs") ?? number("duration"),
                payload: ""
            )
            if let sent, dropped == 0, sentTime != nil, object["eventId"] == .string(eventID) {
                event.payload = sent
            } else {
                // Serialised last: without the fields dropped above, with the id and time filled in.
                object["eventId"] = .string(eventID)
                object["eventTime"] = .string(Timestamp.format(milliseconds: time))
                event.payload = JSONValue.object(object).jsonText
            }
            return event
        }

        /// The field when it has the expected type; otherwise it is removed and counted.
        private mutating func field<T>(_ key: String, as convert: (JSONValue) -> T?) -> T? {
            guard let value = object[key], value != .null else { return nil }
            if let converted = convert(value) { return converted }
            object[key] = nil
            dropped += 1
            return nil
        }

        private mutating func string(_ key: String) -> String? {
            field(key) { value in
                guard case .string(let text) = value else { return nil }
                return text
            }
        }

        private mutating func number(_ key: String) -> Double? {
            field(key) { value in
                switch value {
                case .integer(let number): Double(number)
                case .number(let number): number.isFinite ? number : nil
                default: nil
                }
            }
        }

        private mutating func integer(_ key: String) -> Int64? {
            field(key) { value in
                switch value {
                case .integer(let number): number
                case .number(let number): Int64(exactly: number)
                default: nil
                }
            }
        }

        private mutating func boolean(_ key: String) -> Bool? {
            field(key) { value in
                guard case .bool(let flag) = value else { return nil }
                return flag
            }
        }
    }
}
