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
    /// The running help session's request that an instructor closed: the student's button may
    /// still be on, but someone has been there.
    var helped: Helped?

    struct HelpRequest: Codable, Sendable, Equatable {
        var id: Int64
        var since: String
        var notebook: String?
        var cellIndex: Int64?
    }

    struct Helped: Codable, Sendable, Equatable {
        /// The instructor's email; nil when that account is gone.
        var by: String?
        var at: String
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
                    WHERE e.class_id = cs.class_id AND e.student_id = cs.student_id AND e.has_error = 1 AND e.executed_at >= ?) AS recent_errors,
                h.id AS help_id, h.opened_at AS help_opened_at, h.notebook_path AS help_notebook, h.cell_index AS help_cell,
                helped.closed_at AS helped_at, helper.email AS helped_by
            FROM class_students cs
            JOIN students s ON s.id = cs.student_id
            LEFT JOIN help_requests h ON h.class_id = cs.class_id AND h.student_id = cs.student_id AND h.closed_at IS NULL
            LEFT JOIN help_requests helped ON helped.id = (
                SELECT MAX(id) FROM help_requests WHERE class_id = cs.class_id AND student_id = cs.student_id AND closed_at IS NOT NULL
                    AND \(HelpSession.running))
            LEFT JOIN users helper ON helper.id = helped.helper_id
            WHERE cs.class_id = ?
            """
        var arguments: [SQLValue] = [
            .integer(now.millisecondsSince1970 - errorWindow.milliseconds), .integer(now.millisecondsSince1970 - HelpSession.quietPeriod.milliseconds),
            .integer(classID),
        ]
        if let emails {
            sql += " AND s.email IN (" + Array(repeating: "?", count: emails.count).joined(separator: ", ") + ")"
            arguments += emails.map(SQLValue.text)
        }
        sql += " ORDER BY s.email"
        let idleBefore = now.millisecondsSince1970 - idleAfter.milliseconds
        return try await store.select(SQLStatement(sql, arguments: arguments), as: StudentRow.self).map { row in
            let help: StudentProgress.HelpRequest? =
                if let id = row.helpId, let openedAt = row.helpOpenedAt {
                    .init(id: id, since: Timestamp.format(milliseconds: openedAt), notebook: row.helpNotebook, cellIndex: row.helpCell)
                } else {
                    nil
                }
            let status: StudentProgress.Status =
                if help != nil {
                    .needsHelp
                } else if (row.lastEventAt ?? 0) < idleBefore {
                    .idle
                } else if row.lastExecutionFailed {
                    .erroring
                } else {
                    .active
                }
            return StudentProgress(
                email: row.email, name: row.name, team: row.team, status: status,
                lastActivity: row.lastEventAt.map { Timestamp.format(milliseconds: $0) }, lastEventType: row.lastEventType,
                notebook: row.notebookPath, cellIndex: row.cellIndex, cellsExecuted: row.cellsExecuted, recentErrors: row.recentErrors,
                helpRequest: help, helped: row.helpedAt.map { .init(by: row.helpedBy, at: Timestamp.format(milliseconds: $0)) })
        }
    }

    /// A row of `students(classID:emails:now:)`, decoded by column name.
    private struct StudentRow: Decodable {
        var email: String
        var name: String?
        var team: String?
        var lastEventAt: Int64?
        var lastEventType: String?
        var notebookPath: String?
        var cellIndex: Int64?
        var cellsExecuted: Int64
        var lastExecutionFailed: Bool
        var recentErrors: Int64
        var helpId: Int64?
        var helpOpenedAt: Int64?
        var helpNotebook: String?
        var helpCell: Int64?
        var helpedAt: Int64?
        var helpedBy: String?
    }

    func notebooks(classID: Int64, hotSpots limit: Int = 5) async throws -> [NotebookProgress] {
        let cellRows = try await store.select(
            SQLStatement(
                """
                SELECT notebook_path, cell_index, COUNT(DISTINCT student_id) AS students, COUNT(*) AS executions,
                    COUNT(CASE WHEN has_error = 1 THEN 1 END) AS errors
                FROM cell_executions WHERE class_id = ? GROUP BY notebook_path, cell_index ORDER BY notebook_path, cell_index
                """,
                .integer(classID)
            ),
            as: CellRow.self)
        let errorRows = try await store.select(
            SQLStatement(
                """
                SELECT notebook_path, cell_index, COALESCE(error_message, '') AS message, COUNT(*) AS occurrences FROM cell_executions
                WHERE class_id = ? AND has_error = 1 GROUP BY notebook_path, cell_index, error_message
                """,
                .integer(classID)
            ),
            as: ErrorRow.self)
        var notebooks: [String: NotebookProgress] = [:]
        for row in cellRows {
            let cell = NotebookProgress.Cell(cellIndex: row.cellIndex, students: row.students, executions: row.executions, errors: row.errors)
            notebooks[row.notebookPath, default: NotebookProgress(notebook: row.notebookPath, cells: [], hotSpots: [])].cells.append(cell)
        }
        var messages: [String: [Int64?: [NotebookProgress.ErrorCount]]] = [:]
        for row in errorRows {
            messages[row.notebookPath, default: [:]][row.cellIndex, default: []].append(
                NotebookProgress.ErrorCount(message: row.message, count: row.occurrences))
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

    /// Rows of `notebooks(classID:hotSpots:)`, decoded by column name.
    private struct CellRow: Decodable {
        var notebookPath: String
        var cellIndex: Int64?
        var students: Int64
        var executions: Int64
        var errors: Int64
    }

    private struct ErrorRow: Decodable {
        var notebookPath: String
        var cellIndex: Int64?
        var message: String
        var occurrences: Int64
    }

    /// Closes a help request on the instructor's side ("Helped"); false when it was not open.
    func resolveHelp(classID: Int64, requestID: Int64, helperID: Int64, now: Date) async throws -> Bool {
        let rows = try await store.transaction([
            SQLStatement(
                """
                UPDATE help_requests SET closed_at = ?, closed_by = 'instructor', helper_id = ?
                WHERE id = ? AND class_id = ? AND closed_at IS NULL RETURNING id
                """,
                .integer(now.millisecondsSince1970), .integer(helperID), .integer(requestID), .integer(classID)
            )
        ])
        return !(rows.first ?? []).isEmpty
    }

    /// The email of the student behind a help request.
    func helpRequestStudent(classID: Int64, requestID: Int64) async throws -> String? {
        try await store.selectValue(
            SQLStatement(
                "SELECT s.email FROM help_requests h JOIN students s ON s.id = h.student_id WHERE h.id = ? AND h.class_id = ?",
                .integer(requestID), .integer(classID)
            )
        )?.string
    }
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
