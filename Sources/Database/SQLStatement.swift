import Foundation

/// A value bound to, or read from, a portable statement.
public enum SQLValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    /// Bytes (a submitted notebook kept in the database): BLOB in SQLite, bytea in PostgreSQL.
    case blob(Data)
    case null
    /// Only as an argument inside `Database.transaction`: the first column of the first row that the
    /// statement at this index in the same transaction returned (say, the id of a row it inserted),
    /// or NULL when it returned none.
    case returned(byStatement: Int)

    public init(_ value: Int64?) { self = value.map(SQLValue.integer) ?? .null }
    public init(_ value: Int?) { self = value.map { .integer(Int64($0)) } ?? .null }
    public init(_ value: Double?) { self = value.map(SQLValue.real) ?? .null }
    public init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
    public init(_ value: Bool?) { self = value.map { .integer($0 ? 1 : 0) } ?? .null }

    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .real(let value): Int64(exactly: value.rounded(.towardZero))
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .real(let value): value
        default: nil
        }
    }

    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    public var data: Data? {
        if case .blob(let value) = self { return value }
        return nil
    }
}

public typealias SQLRow = [SQLValue]

/// SQL that both engines run alike, with `?` placeholders: how every feature writes its queries,
/// once for both engines; each engine only binds and runs it. A `?` inside a string literal is
/// text, not a placeholder.
public struct SQLStatement: Sendable {
    public let sql: String
    public let arguments: [SQLValue]
    /// Inside `Database.transaction`: the number of rows the statement must return (a `DELETE …
    /// RETURNING` of rows read before), else the whole transaction is rolled back with
    /// `StoreError.conflict`. How a read-modify-write stays exact when another instance did the
    /// same work meanwhile.
    package private(set) var expectedRows: Int?

    public init(_ sql: String, _ arguments: SQLValue...) {
        self.sql = sql
        self.arguments = arguments
    }

    public init(_ sql: String, arguments: [SQLValue]) {
        self.sql = sql
        self.arguments = arguments
    }

    /// An INSERT of many rows in one statement; nil for none. Callers keep rows × columns below
    /// both engines' limits on bound values (SQLite 32,766; PostgreSQL 65,535).
    package static func insert(into table: String, columns: [String], rows: [[SQLValue]]) -> SQLStatement? {
        guard !rows.isEmpty else { return nil }
        return SQLStatement(
            "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES " + placeholders(columns: columns.count, rows: rows.count),
            arguments: rows.flatMap { $0 })
    }

    /// A statement that begins with a table of rows, `WITH name(columns) AS (VALUES …)`, for
    /// `rest` to read as `name`. Columns of only NULLs have no type on PostgreSQL: `rest` casts
    /// each column it uses. The same limits on bound values as `insert`.
    package static func with(_ name: String, columns: [String], rows: [[SQLValue]], _ rest: String) -> SQLStatement {
        SQLStatement(
            "WITH \(name)(\(columns.joined(separator: ", "))) AS (VALUES \(placeholders(columns: columns.count, rows: rows.count)))\n" + rest,
            arguments: rows.flatMap { $0 })
    }

    private static func placeholders(columns: Int, rows: Int) -> String {
        let tuple = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return Array(repeating: tuple, count: rows).joined(separator: ", ")
    }

    package func expecting(rows: Int) -> SQLStatement {
        var statement = self
        statement.expectedRows = rows
        return statement
    }

    /// The statement with `.returned` arguments replaced by what those statements returned.
    package func resolving(_ results: [[SQLRow]]) -> SQLStatement {
        var statement = SQLStatement(
            sql,
            arguments: arguments.map { argument in
                guard case .returned(let index) = argument else { return argument }
                return results.indices.contains(index) ? results[index].first?.first ?? .null : .null
            })
        statement.expectedRows = expectedRows
        return statement
    }

    /// The rows, unless they are not as many as `expecting(rows:)` asked.
    package func checked(_ rows: [SQLRow]) throws -> [SQLRow] {
        if let expectedRows, rows.count != expectedRows {
            throw StoreError.conflict("\(rows.count) rows where \(expectedRows) were read: another writer changed them meanwhile.")
        }
        return rows
    }

    /// The same statement with PostgreSQL's numbered placeholders (`$1`, `$2`, …). A `?` inside
    /// a string literal (`'…'`, where `''` is a quote) or a quoted name (`"…"`) stays a `?`.
    package var numberedPlaceholders: String {
        // Over bytes: the characters that matter are ASCII, and walking graphemes of statements
        // with thousands of placeholders took a twelfth of the server's time on event ingest.
        var result: [UInt8] = []
        result.reserveCapacity(sql.utf8.count * 2)
        var number = 0
        var quote: UInt8?
        for byte in sql.utf8 {
            if let open = quote {
                if byte == open { quote = nil }
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
            } else if byte == UInt8(ascii: "?") {
                number += 1
                result.append(UInt8(ascii: "$"))
                result.append(contentsOf: String(number).utf8)
                continue
            }
            result.append(byte)
        }
        return String(decoding: result, as: UTF8.self)
    }
}

/// Rows inserted in one go, each unless a row with the same key is in the table already (the
/// classroom's raw events, stored once per class and event id, in the same commit as points).
/// Each engine inserts them set-based and reports which rows were new.
package struct RowsOnce: Sendable {
    let table: String
    let columns: [String]
    /// The unique key that decides whether a row is new: a prefix of `columns`.
    let keyColumns: Int
    package var rows: [[SQLValue]]
    /// A table of the key columns only where the new rows' keys are written too, in the same
    /// commit: the rows a later step still has to handle (it deletes each key when done, so
    /// the big table is never rewritten to say so).
    let pendingTable: String?

    package init(table: String, columns: [String], keyColumns: Int, rows: [[SQLValue]], pendingTable: String? = nil) {
        precondition(keyColumns > 0 && keyColumns <= columns.count)
        self.table = table
        self.columns = columns
        self.keyColumns = keyColumns
        self.rows = rows
        self.pendingTable = pendingTable
    }

    var key: ArraySlice<String> { columns.prefix(keyColumns) }

    /// `INSERT … VALUES (…), (…) ON CONFLICT (key) DO NOTHING RETURNING key` for `count` rows.
    func insertSQL(rows count: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        return "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
            + Array(repeating: row, count: count).joined(separator: ", ")
            + " ON CONFLICT (\(key.joined(separator: ", "))) DO NOTHING RETURNING \(key.joined(separator: ", "))"
    }

    /// Statements of at most `rowsPerStatement` rows (`Database.rowsPerStatement`) and 30,000
    /// bound values each (SQLite allows 32,766, PostgreSQL 65,535).
    package func statements(rowsPerStatement: Int) -> [SQLStatement] {
        let perStatement = max(1, min(rowsPerStatement, 30_000 / columns.count))
        return stride(from: 0, to: rows.count, by: perStatement).map { start in
            let chunk = rows[start..<min(start + perStatement, rows.count)]
            return SQLStatement(insertSQL(rows: chunk.count), arguments: chunk.flatMap { $0 })
        }
    }

    /// The indices of the rows that were new, given the keys the inserts returned: the first row
    /// of each returned key (a key repeated within the rows is stored once).
    package func newRows(returnedKeys: [SQLRow]) -> [Int] {
        var fresh = Set(returnedKeys)
        return rows.indices.filter { fresh.remove(Array(rows[$0].prefix(keyColumns))) != nil }
    }

    /// The rows of several parts (the requests of one commit) as one, so that a commit of many
    /// small requests is a few statements rather than two per request (each a round trip with
    /// PostgreSQL). The parts are of the same table; `split` gives each its new rows back.
    package init(merging parts: [RowsOnce]) {
        let first = parts[0]
        precondition(parts.allSatisfy { $0.table == first.table && $0.columns == first.columns && $0.pendingTable == first.pendingTable })
        self.init(table: first.table, columns: first.columns, keyColumns: first.keyColumns, rows: parts.flatMap(\.rows), pendingTable: first.pendingTable)
    }

    /// The new rows of a merge (`init(merging:)`), as the indices within each part.
    package static func split(_ newRows: [Int], into parts: [RowsOnce]) -> [[Int]] {
        var start = 0
        return parts.map { part in
            defer { start += part.rows.count }
            return newRows.filter { (start..<start + part.rows.count).contains($0) }.map { $0 - start }
        }
    }

    /// What writes the new rows' keys into `pendingTable` (nothing without one).
    package func pendingStatements(newRows: [Int], rowsPerStatement: Int) -> [SQLStatement] {
        guard let pendingTable else { return [] }
        let keys = newRows.map { Array(rows[$0].prefix(keyColumns)) }
        let perStatement = max(1, min(rowsPerStatement, 30_000 / keyColumns))
        return stride(from: 0, to: keys.count, by: perStatement).compactMap { start in
            SQLStatement.insert(into: pendingTable, columns: Array(key), rows: Array(keys[start..<min(start + perStatement, keys.count)]))
        }
    }
}

/// A row whose shape is not what the statement that read it expects: a schema and code that
/// disagree, reported instead of skipped.
package struct UnexpectedRow: Error, CustomStringConvertible {
    let table: String
    let row: SQLRow

    package init(table: String, row: SQLRow) {
        self.table = table
        self.row = row
    }

    package var description: String { "unexpected row from \(table): \(row)" }
}
