import Foundation

/// A value bound to, or read from, a portable statement.
public enum SQLValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    /// Bytes (a submitted notebook kept in the database): BLOB in SQLite, bytea in PostgreSQL.
    case blob(Data)
    case null
    /// Only as an argument inside `Store.transaction`: the first column of the first row that the
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

/// SQL that both engines run alike, with `?` placeholders. Features whose queries are plain
/// standard SQL (the learning-progress picture) are written once in this form; each engine
/// only binds and runs it. Placeholders must not appear inside string literals.
public struct SQLStatement: Sendable {
    public let sql: String
    public let arguments: [SQLValue]

    public init(_ sql: String, _ arguments: SQLValue...) {
        self.sql = sql
        self.arguments = arguments
    }

    public init(_ sql: String, arguments: [SQLValue]) {
        self.sql = sql
        self.arguments = arguments
    }

    /// The statement with `.returned` arguments replaced by what those statements returned.
    func resolving(_ results: [[SQLRow]]) -> SQLStatement {
        SQLStatement(
            sql,
            arguments: arguments.map { argument in
                guard case .returned(let index) = argument else { return argument }
                return results.indices.contains(index) ? results[index].first?.first ?? .null : .null
            })
    }

    /// The same statement with PostgreSQL's numbered placeholders (`$1`, `$2`, …).
    var numberedPlaceholders: String {
        var result = ""
        var number = 0
        for character in sql {
            if character == "?" {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        return result
    }
}
