import Foundation
import PulseboardAccounts
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel
import SwiftCSV

/// Who is in a class. Students are known by email: enrolling an email links the student the
/// events already know (or will know) by that email; the extension's events also enrol their
/// sender in the class whose token they carry.
package struct Enrolment {
    struct Member: Encodable, Sendable, Equatable {
        var email: String
        var name: String?
        var team: String?
        var joinedAt: String
        var lastActivity: String?
        /// Joined by sending events (with the class token), not enrolled by an instructor.
        var joinedByEvents: Bool
        /// Waiting for an instructor to accept them (the class holds new students).
        var held: Bool
    }

    let store: any Database

    package init(store: any Database) {
        self.store = store
    }

    /// Adds a student (or updates their name and team), with `audit` in the same transaction;
    /// returns whether they were new to the class.
    @discardableResult
    func enrol(classID: Int64, email: String, name: String?, team: String?, now: Date, audit: AuditNote?) async throws -> Bool {
        let note = audit?.statement(id: .text("\(classID)/\(email)"))
        let results = try await store.transaction(membership(classID: classID, email: email, name: name, team: team, now: now) + [note].compactMap { $0 })
        return !results[1].isEmpty
    }

    /// Enrols every row of an upload in one transaction (all or none), with `audit`; returns for
    /// each row whether the student was new to the class.
    func enrol(classID: Int64, rows: [RosterCSV.Row], now: Date, audit: AuditNote?) async throws -> [Bool] {
        let statements = rows.flatMap { membership(classID: classID, email: $0.email, name: $0.name, team: $0.team, now: now) }
        let results = try await store.transaction(statements + [audit?.statement(id: .integer(classID))].compactMap { $0 })
        return rows.indices.map { !results[2 * $0 + 1].isEmpty }
    }

    /// The student's row (created or updated) and their membership (the second statement
    /// returns a row only when it is new).
    private func membership(classID: Int64, email: String, name: String?, team: String?, now: Date) -> [SQLStatement] {
        let time = SQLValue.integer(now.millisecondsSince1970)
        return [
            SQLStatement(
                """
                INSERT INTO students (email, name, team, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (email) DO UPDATE SET name = COALESCE(excluded.name, students.name), team = COALESCE(excluded.team, students.team)
                """,
                .text(email), SQLValue(name), SQLValue(team), time, time
            ),
            SQLStatement(
                "INSERT INTO class_students (class_id, student_id, joined_at) SELECT ?, id, ? FROM students WHERE email = ? ON CONFLICT DO NOTHING RETURNING class_id",
                .integer(classID), time, .text(email)
            ),
        ]
    }

    /// Accepts a student who joined by sending events and was held; false when none waits.
    func accept(classID: Int64, email: String, audit: AuditNote?) async throws -> Bool {
        try await changeMembership(
            """
            UPDATE class_students SET held = 0
            WHERE class_id = ? AND student_id = (SELECT id FROM students WHERE email = ?) AND held = 1 RETURNING class_id
            """, classID: classID, email: email, audit: audit)
    }

    /// Removes a student from a class (their events stay); false when they were not in it.
    func unenrol(classID: Int64, email: String, audit: AuditNote?) async throws -> Bool {
        try await changeMembership(
            "DELETE FROM class_students WHERE class_id = ? AND student_id = (SELECT id FROM students WHERE email = ?) RETURNING class_id",
            classID: classID, email: email, audit: audit)
    }

    /// Runs `sql` (bound to the class and email, returning a row when it changed something) with
    /// its audit row, written only then; true when it changed something.
    private func changeMembership(_ sql: String, classID: Int64, email: String, audit: AuditNote?) async throws -> Bool {
        let results = try await store.transaction(
            [SQLStatement(sql, .integer(classID), .text(email))]
                + [audit?.statement(id: .text("\(classID)/\(email)"), onlyIf: .returned(byStatement: 0))].compactMap { $0 })
        return !results[0].isEmpty
    }

    func roster(classID: Int64) async throws -> [Member] {
        try await store.select(
            SQLStatement(
                """
                SELECT s.email, s.name, s.team, cs.joined_at, cs.last_event_at, cs.joined_by_events, cs.held
                FROM class_students cs JOIN students s ON s.id = cs.student_id
                WHERE cs.class_id = ? ORDER BY s.email
                """,
                .integer(classID)
            ),
            as: RosterRow.self
        ).map { row in
            Member(
                email: row.email, name: row.name, team: row.team, joinedAt: Timestamp.format(milliseconds: row.joinedAt),
                lastActivity: row.lastEventAt.map { Timestamp.format(milliseconds: $0) }, joinedByEvents: row.joinedByEvents, held: row.held)
        }
    }

    /// A row of `roster(classID:)`, decoded by column name.
    private struct RosterRow: Decodable {
        var email: String
        var name: String?
        var team: String?
        var joinedAt: Int64
        var lastEventAt: Int64?
        var joinedByEvents: Bool
        var held: Bool
    }
}

/// A roster upload: CSV with a header naming `email` and optionally `name` and `team`.
package enum RosterCSV {
    struct Row: Sendable, Equatable {
        var line: Int
        var email: String
        var name: String?
        var team: String?
    }

    struct Rejection: Encodable, Sendable, Equatable {
        var line: Int
        var email: String?
        var reason: String
    }

    enum Failure: Error {
        case unreadable(String)
    }

    static let maxRows = 5_000

    /// The rows to enrol and the rows refused, with their line numbers (the header is line 1).
    static func parse(_ text: String) throws(Failure) -> (rows: [Row], rejected: [Rejection]) {
        let csv: CSV<Named>
        do {
            csv = try CSV<Named>(string: text, delimiter: .comma)
        } catch {
            throw .unreadable("The file is not readable CSV: \(error).")
        }
        let header = csv.header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard header.contains("email") else { throw .unreadable("The first line must name the columns: email, name, team.") }
        guard csv.rows.count <= maxRows else { throw .unreadable("At most \(maxRows) rows per upload.") }
        var rows: [Row] = []
        var rejected: [Rejection] = []
        var seen = Set<String>()
        for (index, raw) in csv.rows.enumerated() {
            let line = index + 2
            let fields = Dictionary(raw.map { ($0.key.trimmingCharacters(in: .whitespaces).lowercased(), $0.value) }) { first, _ in first }
            let field = { (name: String) -> String? in
                fields[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
            }
            guard let email = field("email").map(AuthService.normalise(email:)) else {
                rejected.append(Rejection(line: line, email: nil, reason: "no email"))
                continue
            }
            guard AuthService.isPlausible(email: email) else {
                rejected.append(Rejection(line: line, email: email, reason: "not an email address"))
                continue
            }
            guard seen.insert(email).inserted else {
                rejected.append(Rejection(line: line, email: email, reason: "listed twice; the first row counts"))
                continue
            }
            let name = field("name")
            let team = field("team")
            if (name?.count ?? 0) > 200 || (team?.count ?? 0) > 100 {
                rejected.append(Rejection(line: line, email: email, reason: "name over 200 or team over 100 characters"))
                continue
            }
            rows.append(Row(line: line, email: email, name: name, team: team))
        }
        return (rows, rejected)
    }
}
