import Foundation
import PulseboardDatabase

/// Turns stored events into the changes they make to their class's picture (the source
/// document's event router). What every event changes, and the cell executions and notebook
/// accesses that are most of what the extension sends, are written as sets: a few statements per
/// batch whatever its size (with PostgreSQL every statement is a round trip). Help requests take
/// a few statements per student and batch; the rarer events (a session's end) go through one
/// handler per event type, a default one for the rest. Nothing here runs SQL: the processor runs
/// the statements, with the deletion of the events' unapplied keys, in one transaction.
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

    /// The statements that apply a batch of events. Each leaves what applying the events one by
    /// one, in order, would leave (a test compares the two): who the students are, their
    /// membership, sessions and notebooks, merged per batch (the first time, the latest time, the
    /// last name given); where each student is and their runs; the cell executions and notebook
    /// accesses; then each other event's handler. The tables each part writes are not read by the
    /// parts after it, except the positions, which the cell-run counts read in the same statement.
    /// Events without an email stay in the raw stream only.
    /// Set statements hold at most `rowsPerStatement` rows (`Database.rowsPerStatement`):
    /// cutting a batch into pieces keeps its meaning, each piece applying its events after the
    /// piece before it, as one by one would.
    func statements(for events: [LearningEvent], rowsPerStatement: Int) -> [SQLStatement] {
        let located = events.filter { $0.email != nil }
        let picture = Picture(rowsPerStatement: rowsPerStatement)
        return picture.seen(located) + picture.positions(located) + picture.executions(located) + picture.notebookAccesses(located)
            + Picture.helpSessions(located) + located.flatMap { (handlers[$0.type] ?? fallback)($0) }
    }

    /// The handlers for the rarer event types of the JupyterLab extension and its relatives.
    static let standard: EventRouter = {
        var router = EventRouter(fallback: { _ in [] })
        router.register("session_end", handler: Picture.sessionEnded)
        return router
    }()
}

/// The statements of the handlers. A student is referred to by email through a subquery, so that
/// no statement needs the result of another and every engine runs them alike.
private struct Picture {
    let rowsPerStatement: Int

    static let student = "(SELECT id FROM students WHERE email = ?)"

    /// What the events of a batch say about who the students are: their names and teams, class
    /// memberships, sessions and notebooks, each with the first and latest time it was seen, as
    /// sets (each key once per batch, so no statement touches a row twice).
    func seen(_ events: [LearningEvent]) -> [SQLStatement] {
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
        let studentRows = pieces(students.entries).map { piece in
            SQLStatement.with(
                "seen", columns: ["email", "name", "team", "first_seen", "last_seen"],
                rows: piece.map { email, seen in [.text(email), SQLValue(seen.name), SQLValue(seen.team), .integer(seen.first), .integer(seen.latest)] },
                """
                INSERT INTO students (email, name, team, first_seen, last_seen)
                SELECT CAST(email AS TEXT), CAST(name AS TEXT), CAST(team AS TEXT), CAST(first_seen AS BIGINT), CAST(last_seen AS BIGINT) FROM seen WHERE true
                ON CONFLICT (email) DO UPDATE SET
                    name = COALESCE(excluded.name, students.name),
                    team = COALESCE(excluded.team, students.team),
                    last_seen = CASE WHEN excluded.last_seen > students.last_seen THEN excluded.last_seen ELSE students.last_seen END
                """)
        }
        // A student new to the class joins by sending events: held for an instructor when the
        // class says so.
        let memberRows = pieces(members.entries).map { piece in
            SQLStatement.with(
                "member", columns: ["class_id", "email", "joined_at"],
                rows: piece.map { member, seen in [.integer(member.classID), .text(member.key), .integer(seen.first)] },
                """
                INSERT INTO class_students (class_id, student_id, joined_at, joined_by_events, held)
                SELECT c.id, s.id, CAST(m.joined_at AS BIGINT), 1, c.hold_new_students
                FROM member m JOIN students s ON s.email = CAST(m.email AS TEXT) JOIN classes c ON c.id = CAST(m.class_id AS BIGINT) WHERE true
                ON CONFLICT DO NOTHING
                """)
        }
        let sessionRows = pieces(sessions.entries).map { piece in
            SQLStatement.with(
                "session", columns: ["class_id", "session_id", "email", "started_at", "last_seen"],
                rows: piece.map { session, seen in
                    [.integer(session.classID), .text(session.key), .text(seen.email), .integer(seen.first), .integer(seen.latest)]
                },
                """
                INSERT INTO student_sessions (class_id, session_id, student_id, started_at, last_seen)
                SELECT CAST(x.class_id AS BIGINT), CAST(x.session_id AS TEXT), s.id, CAST(x.started_at AS BIGINT), CAST(x.last_seen AS BIGINT)
                FROM session x JOIN students s ON s.email = CAST(x.email AS TEXT) WHERE true
                ON CONFLICT (class_id, session_id) DO UPDATE SET
                    last_seen = CASE WHEN excluded.last_seen > student_sessions.last_seen THEN excluded.last_seen ELSE student_sessions.last_seen END
                """)
        }
        let notebookRows = pieces(notebooks.entries).map { piece in
            SQLStatement.with(
                "notebook", columns: ["class_id", "path", "first_seen"],
                rows: piece.map { notebook, seen in [.integer(notebook.classID), .text(notebook.key), .integer(seen.first)] },
                """
                INSERT INTO notebooks (class_id, path, first_seen)
                SELECT CAST(class_id AS BIGINT), CAST(path AS TEXT), CAST(first_seen AS BIGINT) FROM notebook WHERE true ON CONFLICT DO NOTHING
                """)
        }
        return studentRows + memberRows + sessionRows + notebookRows
    }

    /// A batch cut into pieces of at most `rowsPerStatement`, in order.
    func pieces<Item>(_ items: [Item]) -> [ArraySlice<Item>] {
        stride(from: 0, to: items.count, by: rowsPerStatement).map { items[$0..<min($0 + rowsPerStatement, items.count)] }
    }

    /// Where each student is now and their cell runs. One by one, an event moves the student
    /// (time, type, and the notebook and cell when it names them) only if it is not older than
    /// where they are; a cell run counts always, and marks the student's last run failed or not
    /// when it moved them. As a set: an event moves the student if it is not older than the stored
    /// position nor than an earlier event of the piece; the last such event sets each field (the
    /// last one that names it, for the notebook and cell). Every step is a join or a window over
    /// the piece, so the statement's cost grows with the piece, not with its square.
    func positions(_ events: [LearningEvent]) -> [SQLStatement] {
        pieces(events).map { piece in
            let rows: [[SQLValue]] = piece.enumerated().map { index, event in
                let isRun = event.type == "cell_executed"
                return [
                    .integer(Int64(index)), .integer(event.classID), SQLValue(event.email), .integer(event.timeMs), .text(event.type),
                    SQLValue(event.notebookPath), SQLValue(event.cellIndex), SQLValue(event.cellID), SQLValue(isRun),
                    SQLValue(isRun && (event.hasError ?? false)),
                ]
            }
            return SQLStatement.with(
                "piece", columns: ["idx", "class_id", "email", "t", "type", "notebook", "cell_index", "cell_id", "is_run", "failed"], rows: rows,
                """
                , ordered AS MATERIALIZED (
                    SELECT CAST(p.idx AS BIGINT) AS idx, CAST(p.class_id AS BIGINT) AS class_id, s.id AS student_id, CAST(p.t AS BIGINT) AS t,
                        CAST(p.type AS TEXT) AS type, CAST(p.notebook AS TEXT) AS notebook, CAST(p.cell_index AS BIGINT) AS cell_index,
                        CAST(p.cell_id AS TEXT) AS cell_id, CAST(p.is_run AS BIGINT) AS is_run, CAST(p.failed AS BIGINT) AS failed
                    FROM piece p JOIN students s ON s.email = CAST(p.email AS TEXT)
                ), timed AS MATERIALIZED (
                    SELECT o.*, MAX(o.t) OVER (PARTITION BY o.class_id, o.student_id ORDER BY o.idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                        AS earlier FROM ordered o
                ), moved AS MATERIALIZED (
                    SELECT m.* FROM timed m JOIN class_students cs ON cs.class_id = m.class_id AND cs.student_id = m.student_id
                    WHERE (cs.last_event_at IS NULL OR cs.last_event_at <= m.t) AND (m.earlier IS NULL OR m.earlier <= m.t)
                ), latest AS MATERIALIZED (
                    SELECT class_id, student_id, MAX(idx) AS last_idx, MAX(CASE WHEN is_run = 1 THEN idx END) AS run_idx,
                        MAX(CASE WHEN notebook IS NOT NULL THEN idx END) AS notebook_idx,
                        MAX(CASE WHEN cell_index IS NOT NULL THEN idx END) AS cell_index_idx,
                        MAX(CASE WHEN cell_id IS NOT NULL THEN idx END) AS cell_id_idx
                    FROM moved GROUP BY class_id, student_id
                ), outcome AS MATERIALIZED (
                    SELECT r.class_id, r.student_id, r.runs, lr.failed, ln.notebook, lci.cell_index, lcd.cell_id, lt.type, lt.t
                    FROM (SELECT class_id, student_id, SUM(is_run) AS runs FROM ordered GROUP BY class_id, student_id) r
                    LEFT JOIN latest l ON l.class_id = r.class_id AND l.student_id = r.student_id
                    LEFT JOIN ordered lr ON lr.idx = l.run_idx
                    LEFT JOIN ordered ln ON ln.idx = l.notebook_idx
                    LEFT JOIN ordered lci ON lci.idx = l.cell_index_idx
                    LEFT JOIN ordered lcd ON lcd.idx = l.cell_id_idx
                    LEFT JOIN ordered lt ON lt.idx = l.last_idx
                )
                UPDATE class_students SET
                    cells_executed = class_students.cells_executed + outcome.runs,
                    last_execution_failed = COALESCE(outcome.failed, class_students.last_execution_failed),
                    notebook_path = COALESCE(outcome.notebook, class_students.notebook_path),
                    cell_index = COALESCE(outcome.cell_index, class_students.cell_index),
                    cell_id = COALESCE(outcome.cell_id, class_students.cell_id),
                    last_event_type = COALESCE(outcome.type, class_students.last_event_type),
                    last_event_at = COALESCE(outcome.t, class_students.last_event_at)
                FROM outcome WHERE class_students.class_id = outcome.class_id AND class_students.student_id = outcome.student_id
                """)
        }
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

    /// The cell runs, each kept once per class and event id.
    func executions(_ events: [LearningEvent]) -> [SQLStatement] {
        let runs = events.filter { $0.type == "cell_executed" }
        return pieces(runs).map { piece in
            let rows: [[SQLValue]] = piece.map { event in
                [
                    .integer(event.classID), SQLValue(event.email), .text(event.eventID), .text(event.notebookPath ?? ""), SQLValue(event.cellID),
                    SQLValue(event.cellIndex), SQLValue(event.executionCount), SQLValue(event.durationMs), SQLValue(event.hasError ?? false),
                    SQLValue(event.errorMessage.map { String($0.prefix(2_000)) }), SQLValue(event.code.map { String($0.prefix(20_000)) }),
                    .integer(event.timeMs), SQLValue(event.sessionID), SQLValue(event.cellType),
                ]
            }
            return SQLStatement.with(
                "run",
                columns: [
                    "class_id", "email", "event_id", "notebook_path", "cell_id", "cell_index", "execution_count", "duration_ms", "has_error",
                    "error_message", "code", "executed_at", "session_id", "cell_type",
                ], rows: rows,
                // `WHERE true`: SQLite needs it to read ON CONFLICT after a join.
                """
                INSERT INTO cell_executions (class_id, student_id, event_id, notebook_path, cell_id, cell_index, execution_count,
                    duration_ms, has_error, error_message, code, executed_at, session_id, cell_type)
                SELECT CAST(r.class_id AS BIGINT), s.id, CAST(r.event_id AS TEXT), CAST(r.notebook_path AS TEXT), CAST(r.cell_id AS TEXT),
                    CAST(r.cell_index AS BIGINT), CAST(r.execution_count AS BIGINT), CAST(r.duration_ms AS DOUBLE PRECISION),
                    CAST(r.has_error AS BIGINT), CAST(r.error_message AS TEXT), CAST(r.code AS TEXT), CAST(r.executed_at AS BIGINT),
                    CAST(r.session_id AS TEXT), CAST(r.cell_type AS TEXT)
                FROM run r JOIN students s ON s.email = r.email WHERE true
                ON CONFLICT (class_id, event_id) DO NOTHING
                """)
        }
    }

    /// Notebooks opened, saved and closed, each kept once per class and event id.
    func notebookAccesses(_ events: [LearningEvent]) -> [SQLStatement] {
        let accesses = events.filter { ["notebook_opened", "notebook_saved", "notebook_closed"].contains($0.type) }
        return pieces(accesses).map { piece in
            let rows: [[SQLValue]] = piece.map { event in
                [
                    .integer(event.classID), SQLValue(event.email), .text(event.eventID), .text(event.notebookPath ?? ""),
                    .text(String(event.type.dropFirst("notebook_".count))), .integer(event.timeMs),
                ]
            }
            return SQLStatement.with(
                "access", columns: ["class_id", "email", "event_id", "notebook_path", "action", "at"], rows: rows,
                """
                INSERT INTO notebook_accesses (class_id, student_id, event_id, notebook_path, action, at)
                SELECT CAST(a.class_id AS BIGINT), s.id, CAST(a.event_id AS TEXT), CAST(a.notebook_path AS TEXT), CAST(a.action AS TEXT),
                    CAST(a.at AS BIGINT)
                FROM access a JOIN students s ON s.email = a.email WHERE true
                ON CONFLICT (class_id, event_id) DO NOTHING
                """)
        }
    }

    /// The `help` and `help_stop` events of a batch, in order per student. The extension repeats
    /// `help` every 10 s while the button is on, so most are repeats of a session the previous
    /// `help` left running: such a repeat only moves the session's `last_help_at` forward, and a
    /// run of them is one statement with the latest time (moving forward to each time in turn
    /// ends at the latest). A repeat counts as one when it comes within `HelpSession.quietPeriod`
    /// of the run's latest time, so that even a session an instructor closed is still running.
    static func helpSessions(_ events: [LearningEvent]) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        /// Per class and student: the latest time of the run of repeats, and whether it has more
        /// than its first `help` (whose statements are written already).
        var runs: [Pair: (latest: Int64, repeated: Bool)] = [:]
        func endRun(_ key: Pair) {
            guard let run = runs.removeValue(forKey: key), run.repeated else { return }
            statements.append(
                SQLStatement(
                    """
                    UPDATE help_requests SET last_help_at = ?
                    WHERE id = (SELECT MAX(id) FROM help_requests WHERE class_id = ? AND student_id = \(student)) AND COALESCE(last_help_at, opened_at) <= ?
                    """,
                    .integer(run.latest), .integer(key.classID), .text(key.key), .integer(run.latest)))
        }
        for event in events where event.type == "help" || event.type == "help_stop" {
            guard let email = event.email else { continue }
            let key = Pair(event.classID, email)
            if event.type == "help", let run = runs[key], event.timeMs <= run.latest + HelpSession.quietPeriod.milliseconds {
                runs[key] = (max(run.latest, event.timeMs), true)
                continue
            }
            endRun(key)
            if event.type == "help" {
                statements += helpRequested(event)
                runs[key] = (event.timeMs, false)
            } else {
                statements += helpReleased(event)
            }
        }
        for key in Array(runs.keys) { endRun(key) }
        return statements
    }

    /// A `help` event that does not repeat the batch's previous one: it marks the running help
    /// session as still on, or opens a new request when none runs. A request an instructor closed
    /// ("Helped") keeps its session running until the student's `help_stop` or
    /// `HelpSession.quietPeriod` without repeats.
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
