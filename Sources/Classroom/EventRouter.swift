import Foundation
import PulseboardDatabase

/// Turns a stored event into the changes it makes to its class's picture (the source document's
/// event router): one handler per event type, a default one for the rest. Handlers only build
/// statements; the processor runs them, with the event's "processed" mark, in one transaction.
package struct EventRouter: Sendable {
    typealias Handler = @Sendable (LearningEvent) -> [SQLStatement]

    private var handlers: [String: Handler] = [:]
    private let fallback: Handler

    init(fallback: @escaping Handler) {
        self.fallback = fallback
    }

    mutating func register(_ types: String..., handler: @escaping Handler) {
        for type in types { handlers[type] = handler }
    }

    /// The statements that apply a batch of events, in order. Who each student is, their
    /// membership, sessions and notebooks are written once per batch, merged the way applying the
    /// events one by one would leave them (each such statement only keeps the first time, the
    /// latest time and the last name given) — with PostgreSQL every statement is a round trip.
    /// Then, per event, where the student is now and its handler's statements. Events without
    /// an email stay in the raw stream only.
    func statements(for events: [LearningEvent]) -> [SQLStatement] {
        let located = events.filter { $0.email != nil }
        return Picture.seen(located) + located.flatMap { Picture.position($0) + (handlers[$0.type] ?? fallback)($0) }
    }

    /// The handlers for the event types of the JupyterLab extension and its relatives.
    static let standard: EventRouter = {
        var router = EventRouter(fallback: { _ in [] })
        router.register("cell_executed", handler: Picture.execution)
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

    /// What the events of a batch say about who the students are: one statement per student,
    /// class membership, session and notebook, each with the first and latest time it was seen.
    static func seen(_ events: [LearningEvent]) -> [SQLStatement] {
        var students = Merged<String>()
        var members = Merged<Pair>()
        var sessions = Merged<Pair>()
        var notebooks = Merged<Pair>()
        for event in events {
            guard let email = event.email else { continue }
            students.add(email, event)
            members.add(Pair(event.classID, email), event)
            if let session = event.sessionID { sessions.add(Pair(event.classID, session), event) }
            if let path = event.notebookPath { notebooks.add(Pair(event.classID, path), event) }
        }
        let studentRows = students.entries.map { email, seen in
            SQLStatement(
                """
                INSERT INTO students (email, name, team, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (email) DO UPDATE SET
                    name = COALESCE(excluded.name, students.name),
                    team = COALESCE(excluded.team, students.team),
                    last_seen = CASE WHEN excluded.last_seen > students.last_seen THEN excluded.last_seen ELSE students.last_seen END
                """,
                .text(email), SQLValue(seen.name), SQLValue(seen.team), .integer(seen.first), .integer(seen.latest)
            )
        }
        // A student new to the class joins by sending events: held for an instructor when the
        // class says so.
        let memberRows = members.entries.map { member, seen in
            SQLStatement(
                """
                INSERT INTO class_students (class_id, student_id, joined_at, joined_by_events, held)
                SELECT c.id, s.id, ?, 1, c.hold_new_students FROM students s, classes c WHERE s.email = ? AND c.id = ? ON CONFLICT DO NOTHING
                """,
                .integer(seen.first), .text(member.key), .integer(member.classID)
            )
        }
        let sessionRows = sessions.entries.map { session, seen in
            SQLStatement(
                """
                INSERT INTO student_sessions (class_id, session_id, student_id, started_at, last_seen) VALUES (?, ?, \(student), ?, ?)
                ON CONFLICT (class_id, session_id) DO UPDATE SET
                    last_seen = CASE WHEN excluded.last_seen > student_sessions.last_seen THEN excluded.last_seen ELSE student_sessions.last_seen END
                """,
                .integer(session.classID), .text(session.key), .text(seen.email), .integer(seen.first), .integer(seen.latest)
            )
        }
        let notebookRows = notebooks.entries.map { notebook, seen in
            SQLStatement(
                "INSERT INTO notebooks (class_id, path, first_seen) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", .integer(notebook.classID),
                .text(notebook.key), .integer(seen.first))
        }
        return studentRows + memberRows + sessionRows + notebookRows
    }

    /// Where the student is now: only a newer event moves them.
    static func position(_ event: LearningEvent) -> [SQLStatement] {
        let time = SQLValue.integer(event.timeMs)
        return [
            SQLStatement(
                """
                UPDATE class_students SET last_event_at = ?, last_event_type = ?,
                    notebook_path = COALESCE(?, notebook_path), cell_index = COALESCE(?, cell_index), cell_id = COALESCE(?, cell_id)
                WHERE class_id = ? AND student_id = \(student) AND (last_event_at IS NULL OR last_event_at <= ?)
                """,
                time, .text(event.type), SQLValue(event.notebookPath), SQLValue(event.cellIndex), SQLValue(event.cellID), .integer(event.classID),
                SQLValue(event.email), time
            )
        ]
    }

    /// A class id with a student's email, a session id or a notebook path.
    struct Pair: Hashable {
        var classID: Int64
        var key: String

        init(_ classID: Int64, _ key: String) {
            self.classID = classID
            self.key = key
        }
    }

    /// Things seen in a batch, in the order first seen, with what applying their events one by
    /// one would leave: the first time (kept by inserts), the latest time, the last name and team
    /// given (COALESCE keeps a non-null one), and the student's email.
    struct Merged<Key: Hashable> {
        struct Seen {
            var first: Int64
            var latest: Int64
            var name: String?
            var team: String?
            var email: String
        }

        private(set) var entries: [(Key, Seen)] = []
        private var index: [Key: Int] = [:]

        mutating func add(_ key: Key, _ event: LearningEvent) {
            guard let position = index[key] else {
                index[key] = entries.count
                entries.append(
                    (key, Seen(first: event.timeMs, latest: event.timeMs, name: event.userName, team: event.teamName, email: event.email ?? "")))
                return
            }
            entries[position].1.latest = max(entries[position].1.latest, event.timeMs)
            if let name = event.userName { entries[position].1.name = name }
            if let team = event.teamName { entries[position].1.team = team }
        }
    }

    static func execution(_ event: LearningEvent) -> [SQLStatement] {
        let failed = event.hasError ?? false
        let email = SQLValue(event.email)
        return [
            SQLStatement(
                """
                INSERT INTO cell_executions (class_id, student_id, event_id, notebook_path, cell_id, cell_index, execution_count,
                    duration_ms, has_error, error_message, code, executed_at, session_id, cell_type)
                VALUES (?, \(student), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (class_id, event_id) DO NOTHING
                """,
                .integer(event.classID), email, .text(event.eventID), .text(event.notebookPath ?? ""), SQLValue(event.cellID),
                SQLValue(event.cellIndex), SQLValue(event.executionCount), SQLValue(event.durationMs), SQLValue(failed),
                SQLValue(event.errorMessage.map { String($0.prefix(2_000)) }), SQLValue(event.code.map { String($0.prefix(20_000)) }),
                .integer(event.timeMs), SQLValue(event.sessionID), SQLValue(event.cellType)
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

    /// A `help` event: the extension repeats it every 10 s while the student's button is on. A
    /// repeat of the running help session only marks the session as still on; a new request is
    /// opened only when none runs. A request an instructor closed ("Helped") keeps its session
    /// running until the student's `help_stop` or `HelpSession.quietPeriod` without repeats.
    static func helpRequested(_ event: LearningEvent) -> [SQLStatement] {
        let quietSince = event.timeMs - HelpSession.quietPeriod.milliseconds
        return [
            SQLStatement(
                """
                UPDATE help_requests SET last_help_at = ?
                WHERE id = (SELECT MAX(id) FROM help_requests WHERE class_id = ? AND student_id = \(student))
                    AND \(HelpSession.running) AND COALESCE(last_help_at, opened_at) <= ?
                """,
                .integer(event.timeMs), .integer(event.classID), SQLValue(event.email), .integer(quietSince), .integer(event.timeMs)
            ),
            SQLStatement(
                """
                INSERT INTO help_requests (class_id, student_id, notebook_path, cell_index, opened_at, last_help_at)
                SELECT ?, id, ?, ?, ?, ? FROM students WHERE email = ? AND NOT EXISTS (
                    SELECT 1 FROM help_requests WHERE class_id = ? AND student_id = students.id AND \(HelpSession.running))
                """,
                .integer(event.classID), SQLValue(event.notebookPath), SQLValue(event.cellIndex), .integer(event.timeMs), .integer(event.timeMs),
                SQLValue(event.email), .integer(event.classID), .integer(quietSince)
            ),
        ]
    }

    /// `help_stop`: the student's button is off. An open request closes; the session ends.
    static func helpReleased(_ event: LearningEvent) -> [SQLStatement] {
        [
            SQLStatement(
                "UPDATE help_requests SET closed_at = ?, closed_by = 'student' WHERE class_id = ? AND student_id = \(student) AND closed_at IS NULL",
                .integer(event.timeMs), .integer(event.classID), SQLValue(event.email)
            ),
            SQLStatement(
                "UPDATE help_requests SET released_at = ? WHERE class_id = ? AND student_id = \(student) AND released_at IS NULL",
                .integer(event.timeMs), .integer(event.classID), SQLValue(event.email)
            ),
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
