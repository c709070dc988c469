import Foundation
import PulseboardDatabase
import PulseboardKernel

/// A student's working sessions in a class (the extension's `sessionId`: one JupyterLab
/// session), each with the cells run in it: which notebook and cell, its type, how often and how
/// often it failed. What the class page's timeline offers to look at one session at a time.
struct StudentSession: Encodable, Equatable {
    struct Cell: Encodable, Equatable {
        var notebook: String
        var cellIndex: Int64?
        var cellType: String?
        var executions: Int
        var errors: Int
    }

    var sessionId: String
    var startedAt: String
    var lastSeenAt: String
    var endedAt: String?
    var executions: Int
    var errors: Int
    var cells: [Cell]
}

extension ClassProgress {
    /// The student's sessions, the latest first; events without a session id belong to none.
    func sessions(classID: Int64, email: String) async throws -> [StudentSession] {
        struct SessionRow: Decodable {
            var sessionID: String
            var startedAt: Int64
            var lastSeen: Int64
            var endedAt: Int64?
        }
        struct CellRow: Decodable {
            var sessionID: String
            var notebookPath: String
            var cellIndex: Int64?
            var cellType: String?
            var executions: Int
            var errors: Int
        }
        let student = "(SELECT id FROM students WHERE email = ?)"
        let sessions = try await store.select(
            SQLStatement(
                """
                SELECT session_id, started_at, last_seen, ended_at FROM student_sessions
                WHERE class_id = ? AND student_id = \(student) ORDER BY started_at DESC, session_id
                """, .integer(classID), .text(email)), as: SessionRow.self)
        let cells = try await store.select(
            SQLStatement(
                """
                SELECT session_id, notebook_path, cell_index, MAX(cell_type) AS cell_type, COUNT(*) AS executions,
                    COUNT(CASE WHEN has_error = 1 THEN 1 END) AS errors
                FROM cell_executions WHERE class_id = ? AND student_id = \(student) AND session_id IS NOT NULL
                GROUP BY session_id, notebook_path, cell_index ORDER BY session_id, notebook_path, cell_index
                """, .integer(classID), .text(email)), as: CellRow.self)
        let cellsBySession = Dictionary(grouping: cells, by: \.sessionID)
        return sessions.map { session in
            let cells = (cellsBySession[session.sessionID] ?? []).map {
                StudentSession.Cell(notebook: $0.notebookPath, cellIndex: $0.cellIndex, cellType: $0.cellType, executions: $0.executions, errors: $0.errors)
            }
            return StudentSession(
                sessionId: session.sessionID, startedAt: Timestamp.format(milliseconds: session.startedAt),
                lastSeenAt: Timestamp.format(milliseconds: session.lastSeen), endedAt: session.endedAt.map { Timestamp.format(milliseconds: $0) },
                executions: cells.reduce(0) { $0 + $1.executions }, errors: cells.reduce(0) { $0 + $1.errors }, cells: cells)
        }
    }
}
