import Foundation

/// Turns a stored event into the changes it makes to its class's picture (the source document's
/// event router): one handler per event type, a default one for the rest. Handlers only build
/// statements; the processor runs them, with the event's "processed" mark, in one transaction.
struct EventRouter: Sendable {
    typealias Handler = @Sendable (LearningEvent) -> [SQLStatement]

    private var handlers: [String: Handler] = [:]
    private let fallback: Handler

    init(fallback: @escaping Handler) {
        self.fallback = fallback
    }

    mutating func register(_ types: String..., handler: @escaping Handler) {
        for type in types { handlers[type] = handler }
    }

    /// Every event with a student updates who they are and where they are; then its handler runs.
    /// Events without an email stay in the raw stream only.
    func statements(for event: LearningEvent) -> [SQLStatement] {
        guard event.email != nil else { return [] }
        return Picture.seen(event) + (handlers[event.type] ?? fallback)(event)
    }

    /// The handlers for the event types of the JupyterLab extension and its relatives.
    static let standard: EventRouter = {
        var router = EventRouter(fallback: { _ in [] })
        router.register("cell_executed", "cell_execution_complete", "cell_execution_error", "cell_error", handler: Picture.execution)
        router.register("notebook_opened", "notebook_saved", "notebook_closed", handler: Picture.notebookAccess)
        router.register("help", handler: Picture.helpRequested)
        router.register("help_stop", handler: Picture.helpReleased)
        router.register("session_end", handler: Picture.sessionEnded)
        return router
    }()
}

/// The statements of the handlers. A student is referred to by email through a subquery, so that
/// no statement needs the result of another and every engine runs them alike.
private enum Picture {
    static let student = "(SELECT id FROM students WHERE email = ?)"

    static func seen(_ event: LearningEvent) -> [SQLStatement] {
        let email = SQLValue(event.email)
        let time = SQLValue.integer(event.timeMs)
        let classID = SQLValue.integer(event.classID)
        var statements = [
            SQLStatement(
                """
                INSERT INTO students (email, name, team, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (email) DO UPDATE SET
                    name = COALESCE(excluded.name, students.name),
                    team = COALESCE(excluded.team, students.team),
                    last_seen = CASE WHEN excluded.last_seen > students.last_seen THEN excluded.last_seen ELSE students.last_seen END
                """,
                email, SQLValue(event.userName), SQLValue(event.teamName), time, time
            ),
            SQLStatement(
                "INSERT INTO class_students (class_id, student_id, joined_at) SELECT ?, id, ? FROM students WHERE email = ? ON CONFLICT DO NOTHING",
                classID, time, email
            ),
            // Where the student is now: only a newer event moves them.
            SQLStatement(
                """
                UPDATE class_students SET last_event_at = ?, last_event_type = ?,
                    notebook_path = COALESCE(?, notebook_path), cell_index = COALESCE(?, cell_index), cell_id = COALESCE(?, cell_id)
                WHERE class_id = ? AND student_id = \(student) AND (last_event_at IS NULL OR last_event_at <= ?)
                """,
                time, .text(event.type), SQLValue(event.notebookPath), SQLValue(event.cellIndex), SQLValue(event.cellID), classID, email, time
            ),
        ]
        if let sessionID = event.sessionID {
            statements.append(
                SQLStatement(
                    """
                    INSERT INTO student_sessions (class_id, session_id, student_id, started_at, last_seen) VALUES (?, ?, \(student), ?, ?)
                    ON CONFLICT (class_id, session_id) DO UPDATE SET
                        last_seen = CASE WHEN excluded.last_seen > student_sessions.last_seen THEN excluded.last_seen ELSE student_sessions.last_seen END
                    """,
                    classID, .text(sessionID), email, time, time
                ))
        }
        if let path = event.notebookPath {
            statements.append(
                SQLStatement("INSERT INTO notebooks (class_id, path, first_seen) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", classID, .text(path), time))
        }
        return statements
    }

    static func execution(_ event: LearningEvent) -> [SQLStatement] {
        let failed = event.hasError ?? event.type.hasSuffix("error")
        let email = SQLValue(event.email)
        return [
            SQLStatement(
                """
                INSERT INTO cell_executions (class_id, student_id, event_id, notebook_path, cell_id, cell_index, execution_count,
                    duration_ms, has_error, error_message, code, executed_at)
                VALUES (?, \(student), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (class_id, event_id) DO NOTHING
                """,
                .integer(event.classID), email, .text(event.eventID), .text(event.notebookPath ?? ""), SQLValue(event.cellID),
                SQLValue(event.cellIndex), SQLValue(event.executionCount), SQLValue(event.durationMs), SQLValue(failed),
                SQLValue(event.errorMessage.map { String($0.prefix(2_000)) }), SQLValue(event.code.map { String($0.prefix(20_000)) }),
                .integer(event.timeMs)
            ),
            SQLStatement(
                """
                UPDATE class_students SET cells_executed = cells_executed + 1,
                    last_execution_failed = CASE WHEN last_event_at <= ? THEN ? ELSE last_execution_failed END
                WHERE class_id = ? AND student_id = \(student)
                """,
                .integer(event.timeMs), SQLValue(failed), .integer(event.classID), email
            ),
        ]
    }

    static func notebookAccess(_ event: LearningEvent) -> [SQLStatement] {
        [
            SQLStatement(
                """
                INSERT INTO notebook_accesses (class_id, student_id, event_id, notebook_path, action, at)
                VALUES (?, \(student), ?, ?, ?, ?) ON CONFLICT (class_id, event_id) DO NOTHING
                """,
                .integer(event.classID), SQLValue(event.email), .text(event.eventID), .text(event.notebookPath ?? ""),
                .text(String(event.type.dropFirst("notebook_".count))), .integer(event.timeMs)
            )
        ]
    }

    /// Opens a help request unless the student has one open already.
    static func helpRequested(_ event: LearningEvent) -> [SQLStatement] {
        [
            SQLStatement(
                """
                INSERT INTO help_requests (class_id, student_id, notebook_path, cell_index, opened_at)
                SELECT ?, id, ?, ?, ? FROM students WHERE email = ? AND NOT EXISTS (
                    SELECT 1 FROM help_requests WHERE class_id = ? AND student_id = students.id AND closed_at IS NULL)
                """,
                .integer(event.classID), SQLValue(event.notebookPath), SQLValue(event.cellIndex), .integer(event.timeMs), SQLValue(event.email),
                .integer(event.classID)
            )
        ]
    }

    static func helpReleased(_ event: LearningEvent) -> [SQLStatement] {
        [
            SQLStatement(
                "UPDATE help_requests SET closed_at = ?, closed_by = 'student' WHERE class_id = ? AND student_id = \(student) AND closed_at IS NULL",
                .integer(event.timeMs), .integer(event.classID), SQLValue(event.email)
            )
        ]
    }

    static func sessionEnded(_ event: LearningEvent) -> [SQLStatement] {
        guard let sessionID = event.sessionID else { return [] }
        return [
            SQLStatement(
                "UPDATE student_sessions SET ended_at = ? WHERE class_id = ? AND session_id = ?",
                .integer(event.timeMs), .integer(event.classID), .text(sessionID)
            )
        ]
    }
}
