import CSV
import Foundation
import PulseboardKernel

/// The raw events of a class as CSV, one row per event, the extension's field names as columns.
/// CSV.swift quotes per RFC 4180 (commas, quotes, CR and LF); what it cannot know is that a
/// spreadsheet runs a cell that starts like a formula, so text cells starting with `=`, `+`, `-`,
/// `@`, a tab or CR get a leading `'` (OWASP's advice), which spreadsheets show and do not run.
package enum EventCSV {
    static let columns = [
        "eventId", "eventType", "eventTime", "emailAddress", "userName", "teamName", "sessionId", "notebookPath", "cellId", "cellIndex",
        "executionCount", "hasError", "errorMessage", "executionDurationMs",
    ]

    static func render(_ events: [[String: JSONValue]]) throws -> String {
        let stream = OutputStream(toMemory: ())
        let writer = try CSVWriter(stream: stream, newline: .crlf)
        try writer.write(row: columns)
        for event in events {
            try writer.write(row: columns.map { cell(event[$0]) })
        }
        stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self) + "\r\n"
    }

    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text): neutralised(text)
        case .bool(let flag): flag ? "true" : "false"
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case nil, .null, .array, .object: ""
        }
    }

    private static func neutralised(_ text: String) -> String {
        guard let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return text }
        return "'" + text
    }
}
