import Foundation
import PulseboardKernel

/// The raw events of a class as CSV, one row per event, the extension's field names as columns
/// (`CSVTable` quotes them and keeps spreadsheets from running formulas).
package enum EventCSV {
    static let columns = [
        "eventId", "eventType", "eventTime", "emailAddress", "userName", "teamName", "sessionId", "notebookPath", "cellId", "cellIndex",
        "executionCount", "hasError", "errorMessage", "executionDurationMs",
    ]

    static func render(_ events: [[String: JSONValue]]) throws -> String {
        try CSVTable.render(header: columns, rows: events.map { event in columns.map { cell(event[$0]) } })
    }

    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text): text
        case .bool(let flag): flag ? "true" : "false"
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case nil, .null, .array, .object: ""
        }
    }
}
