import Foundation
import PulseboardKernel

/// A row with its column names: what `Database.select(_:as:)` decodes into a struct.
public struct NamedRow: Sendable {
    package let columns: [String]
    package let values: SQLRow

    package init(columns: [String], values: SQLRow) {
        self.columns = columns
        self.values = values
    }

    package func value(_ column: String) -> SQLValue? {
        columns.firstIndex(of: column).map { values[$0] }
    }
}

extension NamedRow {
    /// Decodes the row into `T` by column name: a property `createdAt` reads the column
    /// `created_at`. Times are BIGINT milliseconds, booleans 0 or 1, bytes BLOB / bytea. A
    /// column that is missing or of the wrong type is an error that names it, never a default.
    package func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: RowDecoder(row: self))
    }

    /// Decodes a row a transaction returned (`RETURNING a, b`), named by the columns it asked for.
    package static func decode<T: Decodable>(_ row: SQLRow, columns: [String], as type: T.Type) throws -> T {
        guard row.count == columns.count else { throw UnexpectedRow(table: "\(T.self)", row: row) }
        return try NamedRow(columns: columns, values: row).decode(T.self)
    }
}

private struct RowDecoder: Decoder {
    let row: NamedRow
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Columns<Key>(row: row))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "a row decodes into a struct"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "a row decodes into a struct"))
    }

    /// `createdAt` → `created_at`, `ownerID` → `owner_id`. Over bytes (property names are
    /// ASCII): it runs for every field of every row, and Unicode case rules took a twentieth of
    /// the server's time when event ingest reads back the class cards.
    static func column(_ key: some CodingKey) -> String {
        var name: [UInt8] = []
        var previousIsUpper = true  // no underscore before the first letter
        for byte in key.stringValue.utf8 {
            let isUpper = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            if isUpper, !previousIsUpper { name.append(UInt8(ascii: "_")) }
            name.append(isUpper ? byte + 32 : byte)
            previousIsUpper = isUpper
        }
        return String(decoding: name, as: UTF8.self)
    }
}

private struct Columns<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let row: NamedRow
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { row.columns.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { row.value(RowDecoder.column(key)) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key) == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try Cell(value: try value(key), codingPath: [key]).decode(T.self)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "a column holds one value"))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: [key], debugDescription: "a column holds one value"))
    }

    func superDecoder() throws -> any Decoder { RowDecoder(row: row) }
    func superDecoder(forKey key: Key) throws -> any Decoder { RowDecoder(row: row) }

    private func value(_ key: Key) throws -> SQLValue {
        guard let value = row.value(RowDecoder.column(key)) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: [key], debugDescription: "no column \(RowDecoder.column(key)) in \(row.columns)"))
        }
        return value
    }
}

/// One column's value, for the property (or the raw value of an enum) that reads it.
private struct Cell: Decoder, SingleValueDecodingContainer {
    let value: SQLValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { throw mismatch(type) }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw mismatch([Any].self) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try required(value.int, type) != 0 }
    func decode(_ type: String.Type) throws -> String { try required(value.string, type) }
    func decode(_ type: Double.Type) throws -> Double { try required(value.double, type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try required(value.int, type) }
    func decode(_ type: Int.Type) throws -> Int { Int(try required(value.int, type)) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is Date.Type: return Date(millisecondsSince1970: try required(value.int, type)) as! T
        case is Data.Type: return try required(value.data, type) as! T
        default: return try T(from: self)
        }
    }

    // The remaining fixed-width numbers are not used by any table.
    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int8.Type) throws -> Int8 { throw mismatch(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { throw mismatch(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { throw mismatch(type) }
    func decode(_ type: UInt.Type) throws -> UInt { throw mismatch(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { throw mismatch(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { throw mismatch(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { throw mismatch(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { throw mismatch(type) }

    private func required<T>(_ decoded: T?, _ type: Any.Type) throws -> T {
        guard let decoded else { throw mismatch(type) }
        return decoded
    }

    private func mismatch(_ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "the column holds \(value)"))
    }
}
