import Foundation
import Testing

@testable import PulseboardClassroom
@testable import PulseboardKernel

/// The events export, read back by the CSV reader most analysts use: Python's `csv` module.
@Suite("CSV exports", .throwawayPostgres) struct CSVExportTests {
    /// Hostile values: formulas, a lone LF (a Python traceback), CR LF, a lone CR, quotes, commas.
    static var hostile: [String: Any] {
        [
            "eventId": "e-1", "eventType": "cell_executed", "userName": "=cmd|' /C calc'!A0", "teamName": "+1+1", "sessionId": "@SUM(A1)",
            "notebookPath": "-2+3", "cellId": "\tTAB", "emailAddress": "a@example.com",
            "errorMessage": "Traceback (most recent call last):\n  File \"x.py\", line 1\r\nKeyError: 'a', \"b\"\rend",
            "cellIndex": -1, "hasError": true, "executionDurationMs": 12.5,
        ]
    }

    @Test func everyCellReadsBackAsWrittenAndNoneRunsAsAFormula() throws {
        let event = try JSONDecoder().decode([String: JSONValue].self, from: JSONSerialization.data(withJSONObject: Self.hostile))
        let csv = try EventCSV.render([event, event])
        let rows = try Self.readWithPython(csv)
        #expect(rows.count == 3)
        #expect(rows[0] == EventCSV.columns)
        let row = Dictionary(uniqueKeysWithValues: zip(rows[0], rows[1]))
        #expect(rows[1] == rows[2])
        #expect(row["errorMessage"] == Self.hostile["errorMessage"] as? String)
        #expect(row["userName"] == "'=cmd|' /C calc'!A0")
        #expect(row["teamName"] == "'+1+1")
        #expect(row["sessionId"] == "'@SUM(A1)")
        #expect(row["notebookPath"] == "'-2+3")
        #expect(row["cellId"] == "'\tTAB")
        #expect(row["emailAddress"] == "a@example.com")
        // Numbers are ours, not the client's text: a negative one stays a number.
        #expect(row["cellIndex"] == "-1")
        #expect(row["hasError"] == "true")
        #expect(row["executionDurationMs"] == "12.5")
    }

    /// Parses CSV text with Python's `csv` module and returns its records.
    static func readWithPython(_ csv: String) throws -> [[String]] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString).csv")
        try csv.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = [
            "python3", "-c", "import csv, json, sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))))",
            file.path,
        ]
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        return try JSONDecoder().decode([[String]].self, from: data)
    }
}
