import Foundation
import PulseboardCourses
import PulseboardDatabase
import PulseboardKernel

/// Learning events that reached no class: posted without a class token, with one nobody issued
/// (mistyped), or with a replaced one after its grace period. The extension takes any answer
/// below 500 as delivered and never sends again, so they are kept (table `stray_events`) until an
/// instructor assigns them to a class, after which they are applied as if they had arrived in
/// time. Bounded: per client address and in total, the oldest are dropped past the bound and
/// counted (`pulseboard_stray_events_dropped_total`).
package struct StrayEvents: Sendable {
    package struct Bounds: Sendable {
        package var perAddress = 2_000
        package var total = 100_000

        package init() {}
    }

    /// The events sent with one token label that point to one class (or none): what the classes
    /// page lists and assigns in one action.
    package struct Group: Codable, Sendable, Equatable {
        /// The first characters of the token that was sent (as the class page shows a token's
        /// prefix), or empty when none was sent.
        var tokenLabel: String
        /// The class whose replaced token it was, when it was one.
        var classId: Int64?
        var className: String?
        var events: Int
        /// The students the events name, at most 50.
        var students: [String]
        var firstReceivedAt: String
        var lastReceivedAt: String
    }

    static let labelLength = 12
    static let maxStudentsShown = 50

    let store: any Database
    let telemetry: Telemetry
    let bounds: Bounds

    package init(store: any Database, telemetry: Telemetry, bounds: Bounds) {
        self.store = store
        self.telemetry = telemetry
        self.bounds = bounds
    }

    /// What identifies a token in the list without being it: its first characters, as the
    /// class page shows a token's prefix.
    static func label(_ token: String?) -> String {
        token.map { String($0.prefix(labelLength)) } ?? ""
    }

    /// Keeps `events` (parsed without a class) in one transaction with the bounds' deletions.
    func keep(_ events: [LearningEvent], token: String?, classHint: Int64?, clientAddress: String, now: Date) async throws {
        let label = Self.label(token)
        let insert = SQLStatement.insert(
            into: "stray_events", columns: ["received_at", "client_address", "token_label", "class_hint", "email", "event_time", "payload"],
            rows: events.map { event in
                [
                    .integer(now.millisecondsSince1970), .text(clientAddress), .text(label), SQLValue(classHint), SQLValue(event.email),
                    .integer(event.timeMs), .text(event.payload),
                ]
            })
        guard let insert else { return }
        // Past a bound, the oldest go: of this address first, then of everyone.
        let results = try await store.transaction([
            insert,
            SQLStatement(
                """
                DELETE FROM stray_events WHERE id IN
                (SELECT id FROM stray_events WHERE client_address = ? ORDER BY id DESC LIMIT 1000000000 OFFSET ?) RETURNING id
                """, .text(clientAddress), .integer(Int64(bounds.perAddress))),
            SQLStatement(
                "DELETE FROM stray_events WHERE id IN (SELECT id FROM stray_events ORDER BY id DESC LIMIT 1000000000 OFFSET ?) RETURNING id",
                .integer(Int64(bounds.total))),
        ])
        let dropped = results.dropFirst().reduce(0) { $0 + $1.count }
        if dropped > 0 { telemetry.strayEventsDropped.increment(by: Int64(dropped)) }
    }

    /// The groups an admin sees (`classIDs` nil: all), or an instructor (those whose replaced
    /// token belonged to one of `classIDs`), most recent first.
    func groups(classIDs: Set<Int64>?) async throws -> [Group] {
        struct Row: Decodable {
            var tokenLabel: String
            var classHint: Int64?
            var className: String?
            var events: Int
            var firstReceivedAt: Int64
            var lastReceivedAt: Int64
        }
        let rows = try await store.select(
            SQLStatement(
                """
                SELECT s.token_label, s.class_hint, c.name AS class_name, COUNT(*) AS events,
                MIN(s.received_at) AS first_received_at, MAX(s.received_at) AS last_received_at
                FROM stray_events s LEFT JOIN classes c ON c.id = s.class_hint
                GROUP BY s.token_label, s.class_hint, c.name ORDER BY last_received_at DESC
                """), as: Row.self)
        var groups: [Group] = []
        for row in rows where classIDs == nil || row.classHint.map({ classIDs!.contains($0) }) == true {
            let students = try await store.select(
                SQLStatement(
                    "SELECT DISTINCT email FROM stray_events WHERE \(Self.groupCondition) AND email IS NOT NULL ORDER BY email LIMIT ?",
                    arguments: Self.groupArguments(row.tokenLabel, row.classHint) + [.integer(Int64(Self.maxStudentsShown))])
            ).compactMap { $0.first?.string }
            groups.append(
                Group(
                    tokenLabel: row.tokenLabel, classId: row.classHint, className: row.className, events: row.events, students: students,
                    firstReceivedAt: Timestamp.format(milliseconds: row.firstReceivedAt), lastReceivedAt: Timestamp.format(milliseconds: row.lastReceivedAt)
                ))
        }
        return groups
    }

    /// A group's rows, at most `limit`, oldest first: their ids, and their events as events of
    /// `classID` (a payload that is not a JSON object, which only a hand-edited row could be, has
    /// an id and no event).
    func take(tokenLabel: String, classHint: Int64?, into classID: Int64, limit: Int) async throws -> (ids: [Int64], events: [LearningEvent]) {
        struct Row: Decodable {
            var id: Int64
            var receivedAt: Date
            var payload: String
        }
        let rows = try await store.select(
            SQLStatement(
                "SELECT id, received_at, payload FROM stray_events WHERE \(Self.groupCondition) ORDER BY id LIMIT ?",
                arguments: Self.groupArguments(tokenLabel, classHint) + [.integer(Int64(limit))]), as: Row.self)
        let events = rows.compactMap { row -> LearningEvent? in
            guard case .object(let object) = try? JSONValue(parsing: Data(row.payload.utf8)) else { return nil }
            return EventParser.event(from: object, classID: classID, receivedAt: row.receivedAt)
        }
        return (rows.map(\.id), events)
    }

    func remove(ids: [Int64]) async throws {
        let statements = stride(from: 0, to: ids.count, by: 500).map { start in
            let chunk = ids[start..<min(start + 500, ids.count)].map(SQLValue.integer)
            return SQLStatement(
                "DELETE FROM stray_events WHERE id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ", ")))", arguments: chunk)
        }
        if !statements.isEmpty { _ = try await store.transaction(statements) }
    }

    /// One group: a token label with a class hint, or without one (`IS NULL` does not match `= NULL`).
    static let groupCondition = "token_label = ? AND (class_hint = ? OR (class_hint IS NULL AND CAST(? AS BIGINT) IS NULL))"

    static func groupArguments(_ label: String, _ hint: Int64?) -> [SQLValue] {
        [.text(label), SQLValue(hint), SQLValue(hint)]
    }
}
