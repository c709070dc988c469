import Foundation
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// An assignment: a notebook of a class to work on, with an optional due date. Decoded from
/// `assignments` by column name.
package struct AssignmentRecord: Sendable, Equatable, Decodable {
    package var id: Int64
    package var classID: Int64
    package var title: String
    package var description: String
    package var notebookPath: String
    package var dueAtMs: Int64?
    var createdBy: Int64
    var createdAtMs: Int64
    var updatedAtMs: Int64

    enum CodingKeys: String, CodingKey {
        case id, classID, title, description, notebookPath, createdBy
        case dueAtMs = "dueAt", createdAtMs = "createdAt", updatedAtMs = "updatedAt"
    }
}

/// How far one student got on an assignment's notebook, from their events.
package struct AssignmentProgress: Encodable, Sendable, Equatable {
    var email: String
    var name: String?
    var opened: Bool
    var cellsRun: Int64
    var furthestCell: Int64?
    var errors: Int64
    var lastActivity: String?
}

/// Assignments in storage, through portable statements; each change writes its audit note in
/// its own transaction.
package struct Assignments {
    let store: any Database

    private static let columnNames = ["id", "class_id", "title", "description", "notebook_path", "due_at", "created_by", "created_at", "updated_at"]
    private static let columns = columnNames.joined(separator: ", ")

    package init(store: any Database) {
        self.store = store
    }

    func create(_ draft: AssignmentRecord, audit: AuditNote?) async throws -> AssignmentRecord {
        let rows = try await store.transaction(
            [
                SQLStatement(
                    """
                    INSERT INTO assignments (class_id, title, description, notebook_path, due_at, created_by, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING \(Self.columns)
                    """,
                    .integer(draft.classID), .text(draft.title), .text(draft.description), .text(draft.notebookPath), SQLValue(draft.dueAtMs),
                    .integer(draft.createdBy), .integer(draft.createdAtMs), .integer(draft.updatedAtMs)
                )
            ] + [audit?.statement(id: .returned(byStatement: 0))].compactMap { $0 })
        guard let row = rows.first?.first else { throw StoreError.unavailable("the new assignment was not returned") }
        return try NamedRow.decode(row, columns: Self.columnNames, as: AssignmentRecord.self)
    }

    func find(id: Int64) async throws -> AssignmentRecord? {
        try await store.select(SQLStatement("SELECT \(Self.columns) FROM assignments WHERE id = ?", .integer(id)), as: AssignmentRecord.self).first
    }

    /// The assignments of the given classes (all classes when nil), by due date.
    func list(classIDs: [Int64]?) async throws -> [AssignmentRecord] {
        var sql = "SELECT \(Self.columns) FROM assignments"
        var arguments: [SQLValue] = []
        if let classIDs {
            guard !classIDs.isEmpty else { return [] }
            sql += " WHERE class_id IN (" + Array(repeating: "?", count: classIDs.count).joined(separator: ", ") + ")"
            arguments = classIDs.map(SQLValue.integer)
        }
        sql += " ORDER BY due_at IS NULL, due_at, id"
        return try await store.select(SQLStatement(sql, arguments: arguments), as: AssignmentRecord.self)
    }

    func update(_ record: AssignmentRecord, audit: AuditNote?) async throws {
        try await store.transaction(
            [
                SQLStatement(
                    "UPDATE assignments SET title = ?, description = ?, notebook_path = ?, due_at = ?, updated_at = ? WHERE id = ?",
                    .text(record.title), .text(record.description), .text(record.notebookPath), SQLValue(record.dueAtMs),
                    .integer(record.updatedAtMs), .integer(record.id)
                )
            ] + [audit?.statement(id: .integer(record.id))].compactMap { $0 })
    }

    func delete(id: Int64, audit: AuditNote?) async throws {
        try await store.transaction(
            [SQLStatement("DELETE FROM assignments WHERE id = ?", .integer(id))] + [audit?.statement(id: .integer(id))].compactMap { $0 })
    }

    /// Every student of the assignment's class, with what their events say about its notebook.
    func progress(of assignment: AssignmentRecord) async throws -> [AssignmentProgress] {
        let scope = "e.class_id = cs.class_id AND e.student_id = cs.student_id AND e.notebook_path = ?"
        let path = SQLValue.text(assignment.notebookPath)
        return try await store.select(
            SQLStatement(
                """
                SELECT s.email, s.name,
                    (SELECT COUNT(*) FROM notebook_accesses e WHERE \(scope) AND e.action = 'opened') AS opens,
                    (SELECT COUNT(DISTINCT e.cell_index) FROM cell_executions e WHERE \(scope)) AS cells_run,
                    (SELECT MAX(e.cell_index) FROM cell_executions e WHERE \(scope) AND e.has_error = 0) AS furthest_cell,
                    (SELECT COUNT(*) FROM cell_executions e WHERE \(scope) AND e.has_error = 1) AS errors,
                    (SELECT MAX(e.executed_at) FROM cell_executions e WHERE \(scope)) AS last_executed_at
                FROM class_students cs JOIN students s ON s.id = cs.student_id
                WHERE cs.class_id = ? ORDER BY s.email
                """,
                arguments: [path, path, path, path, path, .integer(assignment.classID)]
            ),
            as: ProgressRow.self
        ).map { row in
            AssignmentProgress(
                email: row.email, name: row.name, opened: row.opens > 0 || row.cellsRun > 0, cellsRun: row.cellsRun, furthestCell: row.furthestCell,
                errors: row.errors, lastActivity: row.lastExecutedAt.map { Timestamp.format(milliseconds: $0) })
        }
    }

    /// A row of `progress(of:)`, decoded by column name.
    private struct ProgressRow: Decodable {
        var email: String
        var name: String?
        var opens: Int64
        var cellsRun: Int64
        var furthestCell: Int64?
        var errors: Int64
        var lastExecutedAt: Int64?
    }
}
