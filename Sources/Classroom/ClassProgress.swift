import Foundation
import PulseboardDatabase
import PulseboardKernel

/// One student's place in a class, as the instructor's live view shows it.
package struct StudentProgress: Codable, Sendable, Equatable {
    enum Status: String, Codable, Sendable {
        case needsHelp = "needs_help"
        case erroring, active, idle
    }

    var email: String
    var name: String?
    var team: String?
    var status: Status
    var lastActivity: String?
    var lastEventType: String?
    var notebook: String?
    var cellIndex: Int64?
    var cellsExecuted: Int64
    var recentErrors: Int64
    var helpRequest: HelpRequest?

    struct HelpRequest: Codable, Sendable, Equatable {
        var id: Int64
        var since: String
        var notebook: String?
        var cellIndex: Int64?
    }
}

/// Per notebook: how many students reached each cell, and where the errors are.
package struct NotebookProgress: Codable, Sendable, Equatable {
    struct Cell: Codable, Sendable, Equatable {
        var cellIndex: Int64?
        var students: Int64
        var executions: Int64
        var errors: Int64
    }

    struct HotSpot: Codable, Sendable, Equatable {
        var cellIndex: Int64?
        var errors: Int64
        var topErrors: [ErrorCount]
    }

    struct ErrorCount: Codable, Sendable, Equatable {
        var message: String
        var count: Int64
    }

    var notebook: String
    var cells: [Cell]
    var hotSpots: [HotSpot]
}

/// The aggregate queries over a class's picture (the tables the event router maintains).
package struct ClassProgress {
    let store: any Database
    /// A student without events for this long is idle.
    var idleAfter: Duration = .seconds(300)
    /// Errors counted as recent.
    var errorWindow: Duration = .seconds(600)

    package init(store: any Database, idleAfter: Duration = .seconds(300), errorWindow: Duration = .seconds(600)) {
        self.store = store
        self.idleAfter = idleAfter
        self.errorWindow = errorWindow
    }

    func students(classID: Int64, email: String, now: Date = Date()) async throws -> [StudentProgress] {
        try await students(classID: classID, emails: [email], now: now)
    }

    /// Every student of the class, or only those with the given emails.
    func students(classID: Int64, emails: [String]? = nil, now: Date = Date()) async throws -> [StudentProgress] {
        var sql = """
            SELECT s.email, s.name, s.team, cs.last_event_at, cs.last_event_type, cs.notebook_path, cs.cell_index, cs.cells_executed,
                cs.last_execution_failed,
                (SELECT COUNT(*) FROM cell_executions e
                    WHERE e.class_id = cs.class_id AND e.student_id = cs.student_id AND e.has_error = 1 AND e.executed_at >= ?),
                h.id, h.opened_at, h.notebook_path, h.cell_index
            FROM class_students cs
            JOIN students s ON s.id = cs.student_id
            LEFT JOIN help_requests h ON h.class_id = cs.class_id AND h.student_id = cs.student_id AND h.closed_at IS NULL
            WHERE cs.class_id = ?
            """
        var arguments: [SQLValue] = [.integer(now.millisecondsSince1970 - errorWindow.milliseconds), .integer(classID)]
        if let emails {
            sql += " AND s.email IN (" + Array(repeating: "?", count: emails.count).joined(separator: ", ") + ")"
            arguments += emails.map(SQLValue.text)
        }
        sql += " ORDER BY s.email"
        let idleBefore = now.millisecondsSince1970 - idleAfter.milliseconds
        return try await store.select(SQLStatement(sql, arguments: arguments)).map { row in
            let lastEventAt = row[3].int
            let help = row[10].int.map { id in
                StudentProgress.HelpRequest(
                    id: id, since: Timestamp.format(milliseconds: row[11].int ?? 0), notebook: row[12].string, cellIndex: row[13].int)
            }
            let status: StudentProgress.Status =
                if help != nil {
                    .needsHelp
                } else if (lastEventAt ?? 0) < idleBefore {
                    .idle
                } else if row[8].int == 1 {
                    .erroring
                } else {
                    .active
                }
            return StudentProgress(
                email: row[0].string ?? "", name: row[1].string, team: row[2].string, status: status,
                lastActivity: lastEventAt.map { Timestamp.format(milliseconds: $0) }, lastEventType: row[4].string, notebook: row[5].string,
                cellIndex: row[6].int, cellsExecuted: row[7].int ?? 0, recentErrors: row[9].int ?? 0, helpRequest: help)
        }
    }

    func notebooks(classID: Int64, hotSpots limit: Int = 5) async throws -> [NotebookProgress] {
        let cellRows = try await store.select(
            SQLStatement(
                """
                SELECT notebook_path, cell_index, COUNT(DISTINCT student_id), COUNT(*), COUNT(CASE WHEN has_error = 1 THEN 1 END)
                FROM cell_executions WHERE class_id = ? GROUP BY notebook_path, cell_index ORDER BY notebook_path, cell_index
                """,
                .integer(classID)
            ))
        let errorRows = try await store.select(
            SQLStatement(
                """
                SELECT notebook_path, cell_index, COALESCE(error_message, ''), COUNT(*) FROM cell_executions
                WHERE class_id = ? AND has_error = 1 GROUP BY notebook_path, cell_index, error_message
                """,
                .integer(classID)
            ))
        var notebooks: [String: NotebookProgress] = [:]
        for row in cellRows {
            let path = row[0].string ?? ""
            let cell = NotebookProgress.Cell(cellIndex: row[1].int, students: row[2].int ?? 0, executions: row[3].int ?? 0, errors: row[4].int ?? 0)
            notebooks[path, default: NotebookProgress(notebook: path, cells: [], hotSpots: [])].cells.append(cell)
        }
        var messages: [String: [Int64?: [NotebookProgress.ErrorCount]]] = [:]
        for row in errorRows {
            messages[row[0].string ?? "", default: [:]][row[1].int, default: []].append(
                NotebookProgress.ErrorCount(message: row[2].string ?? "", count: row[3].int ?? 0))
        }
        for (path, notebook) in notebooks {
            notebooks[path]?.hotSpots = notebook.cells.filter { $0.errors > 0 }
                .sorted { ($0.errors, -($0.cellIndex ?? 0)) > ($1.errors, -($1.cellIndex ?? 0)) }
                .prefix(limit)
                .map { cell in
                    let top = (messages[path]?[cell.cellIndex] ?? []).sorted { ($0.count, $1.message) > ($1.count, $0.message) }.prefix(3)
                    return NotebookProgress.HotSpot(cellIndex: cell.cellIndex, errors: cell.errors, topErrors: Array(top))
                }
        }
        return notebooks.values.sorted { $0.notebook < $1.notebook }
    }

    /// Closes a help request on the instructor's side; false when it was not open.
    func resolveHelp(classID: Int64, requestID: Int64, now: Date) async throws -> Bool {
        let rows = try await store.transaction([
            SQLStatement(
                "UPDATE help_requests SET closed_at = ?, closed_by = 'instructor' WHERE id = ? AND class_id = ? AND closed_at IS NULL RETURNING id",
                .integer(now.millisecondsSince1970), .integer(requestID), .integer(classID)
            )
        ])
        return !(rows.first ?? []).isEmpty
    }

    /// The email of the student behind a help request.
    func helpRequestStudent(classID: Int64, requestID: Int64) async throws -> String? {
        try await store.select(
            SQLStatement(
                "SELECT s.email FROM help_requests h JOIN students s ON s.id = h.student_id WHERE h.id = ? AND h.class_id = ?",
                .integer(requestID), .integer(classID)
            )
        ).first?.first?.string
    }
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
