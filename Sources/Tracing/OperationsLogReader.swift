import Foundation
import PulseboardDatabase
import PulseboardKernel

/// Reads the request and task logs back: for the admin API and page, and their CSV exports.
package struct OperationsLogReader: Sendable {
    /// Which requests to list; every part is optional.
    package struct Filter: Sendable {
        /// One status (`500`) or a class of them (`5xx`).
        package var status: ClosedRange<Int>?
        /// A route pattern as the log names it (`/api/v1/classes/{id}`).
        package var route: String?
        /// A user id, or an email.
        package var user: String?
        package var from: Date?
        package var to: Date?
        package var limit = 100
        /// Newest first (the admin page), or oldest first (an export).
        package var newestFirst = true

        package init() {}

        /// `500` or `5xx`; nil for anything else.
        package static func statuses(_ text: String) -> ClosedRange<Int>? {
            if let code = Int(text), (100...599).contains(code) { return code...code }
            if text.count == 3, text.lowercased().hasSuffix("xx"), let hundred = Int(text.prefix(1)), (1...5).contains(hundred) {
                return hundred * 100...hundred * 100 + 99
            }
            return nil
        }
    }

    /// One trace: its requests (usually one) and every step of the work it started, in order.
    package struct Trace: Codable, Sendable {
        package var traceId: String
        package var requests: [RequestRecord]
        package var steps: [TaskStep]
    }

    static let requestColumns = "id, " + RequestRecord.columns.joined(separator: ", ")
    static let stepColumns = "id, " + TaskStep.columns.joined(separator: ", ")

    let store: any Database

    package init(store: any Database) {
        self.store = store
    }

    /// The newest requests first.
    package func requests(_ filter: Filter) async throws -> [RequestRecord] {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let status = filter.status {
            conditions.append("response_status BETWEEN ? AND ?")
            arguments += [.integer(Int64(status.lowerBound)), .integer(Int64(status.upperBound))]
        }
        if let route = filter.route {
            conditions.append("route = ?")
            arguments.append(.text(route))
        }
        if let user = filter.user {
            if let id = Int64(user) {
                conditions.append("user_id = ?")
                arguments.append(.integer(id))
            } else {
                conditions.append("user_id IN (SELECT id FROM users WHERE email = ?)")
                arguments.append(.text(user.lowercased()))
            }
        }
        conditions += timeConditions(from: filter.from, to: filter.to, arguments: &arguments)
        let sql =
            "SELECT \(Self.requestColumns) FROM api_logs"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) + " ORDER BY id \(filter.newestFirst ? "DESC" : "ASC") LIMIT ?"
        return try await store.select(SQLStatement(sql, arguments: arguments + [.integer(Int64(filter.limit))]), as: RequestRecord.self)
    }

    package func trace(_ traceID: String) async throws -> Trace {
        let requests = try await store.select(
            SQLStatement("SELECT \(Self.requestColumns) FROM api_logs WHERE trace_id = ? ORDER BY id", .text(traceID)), as: RequestRecord.self)
        let steps = try await store.select(
            SQLStatement("SELECT \(Self.stepColumns) FROM task_progress_logs WHERE trace_id = ? ORDER BY created_at, execution_order, id", .text(traceID)),
            as: TaskStep.self)
        return Trace(traceId: traceID, requests: requests, steps: steps)
    }

    /// Task steps in a time range, oldest first (the second file of an export).
    package func steps(from: Date?, to: Date?, limit: Int) async throws -> [TaskStep] {
        var arguments: [SQLValue] = []
        let conditions = timeConditions(from: from, to: to, arguments: &arguments)
        let sql =
            "SELECT \(Self.stepColumns) FROM task_progress_logs"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) + " ORDER BY id LIMIT ?"
        return try await store.select(SQLStatement(sql, arguments: arguments + [.integer(Int64(limit))]), as: TaskStep.self)
    }

    private func timeConditions(from: Date?, to: Date?, arguments: inout [SQLValue]) -> [String] {
        var conditions: [String] = []
        if let from {
            conditions.append("created_at >= ?")
            arguments.append(.integer(from.millisecondsSince1970))
        }
        if let to {
            conditions.append("created_at < ?")
            arguments.append(.integer(to.millisecondsSince1970))
        }
        return conditions
    }
}

/// The two logs as CSV files with seed 003's column names (`api_logs.csv`, `task_progress_logs.csv`).
package enum OperationsLogCSV {
    package static func requests(_ records: [RequestRecord]) throws -> String {
        try CSVTable.render(
            header: ["id", "trace_id", "created_at"] + RequestRecord.columns.dropFirst(2),
            rows: records.map { record in
                [
                    record.id.map(String.init) ?? "", record.traceID, Timestamp.format(record.createdAt), record.method, record.route, record.endpoint,
                    record.requestHeader, record.requestBody ?? "", String(record.responseStatus), record.responseHeader, record.responseBody ?? "",
                    String(record.durationMs), record.ipAddress, record.userID.map(String.init) ?? "",
                ]
            })
    }

    package static func steps(_ steps: [TaskStep]) throws -> String {
        try CSVTable.render(
            header: ["id", "trace_id", "created_at"] + TaskStep.columns.dropFirst(2),
            rows: steps.map { step in
                [
                    step.id.map(String.init) ?? "", step.traceID, Timestamp.format(step.createdAt), step.taskName, step.stepName, step.status.rawValue,
                    String(step.executionOrder), step.inputData ?? "", step.outputData ?? "", step.errorMessage ?? "", step.stackTrace ?? "",
                ]
            })
    }
}
