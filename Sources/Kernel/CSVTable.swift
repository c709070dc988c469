import CSV
import Foundation

/// Every CSV file Pulseboard writes (event exports, the request and task logs). CSV.swift quotes
/// per RFC 4180 (commas, quotes, CR and LF); what it cannot know is that a spreadsheet runs a cell
/// that starts like a formula, so cells starting with `=`, `+`, `-`, `@`, a tab or CR get a
/// leading `'` (OWASP's advice), which spreadsheets show and do not run; numbers (`-5`, `+1.5`)
/// are left as they are.
package enum CSVTable {
    /// What a downloaded or exported file starts with, so that spreadsheets (Excel) read it as
    /// UTF-8 and Japanese names stay legible.
    package static let byteOrderMark = "\u{FEFF}"

    /// The table with CRLF line ends, ending with one.
    package static func render(header: [String], rows: [[String]]) throws -> String {
        let stream = OutputStream(toMemory: ())
        let writer = try CSVWriter(stream: stream, newline: .crlf)
        try writer.write(row: header)
        for row in rows {
            try writer.write(row: row.map(neutralised))
        }
        stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self) + "\r\n"
    }

    package static func neutralised(_ text: String) -> String {
        guard let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first), Double(text)?.isFinite != true else { return text }
        return "'" + text
    }
}
