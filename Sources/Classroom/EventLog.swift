import Foundation
import PulseboardDatabase
import PulseboardKernel

/// The raw event stream (table `events`): every event as received, once per class and event id,
/// kept for timelines and export. The keys of the events not yet applied to the class picture
/// are in `events_unapplied`, written in the ingest commit and deleted as they are applied, so
/// that what a crash or a failure left behind is applied by the sweep.
package enum EventLog {
    /// The events as rows stored once per class and event id, in the writer's commit.
    static func rows(_ events: [LearningEvent], receivedAt: Date) -> RowsOnce {
        RowsOnce(
            table: "events",
            columns: ["class_id", "event_id", "event_type", "event_time", "received_at", "email", "payload", "trace_id", "session_id"],
            keyColumns: 2,
            rows: events.map { event in
                [
                    .integer(event.classID), .text(event.eventID), .text(event.type), .integer(event.timeMs),
                    .integer(receivedAt.millisecondsSince1970), SQLValue(event.email), .text(event.payload), SQLValue(event.traceID),
                    SQLValue(event.sessionID),
                ]
            },
            pendingTable: "events_unapplied")
    }

    /// Marks events applied (or, for `Stored.event()` failures, given up): one statement per class
    /// and `rowsPerStatement` events (`Database.rowsPerStatement`).
    static func markProcessed(_ events: [some StoredEventKey], rowsPerStatement: Int) -> [SQLStatement] {
        Dictionary(grouping: events, by: \.classID).sorted { $0.key < $1.key }.flatMap { classID, events in
            stride(from: 0, to: events.count, by: rowsPerStatement).map { start in
                let ids = events[start..<min(start + rowsPerStatement, events.count)].map { SQLValue.text($0.eventID) }
                return SQLStatement(
                    "DELETE FROM events_unapplied WHERE class_id = ? AND event_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))",
                    arguments: [.integer(classID)] + ids)
            }
        }
    }

    /// An event as stored, decoded by column name (select it with `Stored.columns` from `events e`).
    struct Stored: Decodable, StoredEventKey {
        static let columns = "e.class_id, e.event_id, e.received_at, e.payload, e.trace_id"

        var classID: Int64
        var eventID: String
        var receivedAt: Date
        var payload: String
        var traceID: String?

        /// The payload: the JSON object the event was stored as. Anything else is an error that
        /// names the event, never a row skipped.
        func object() throws -> [String: JSONValue] {
            guard case .object(let object) = try? JSONValue(parsing: Data(payload.utf8)) else {
                throw UnreadableEvent(classID: classID, eventID: eventID)
            }
            return object
        }

        /// The event again, to apply it after a crash.
        func event() throws -> LearningEvent {
            var event = EventParser.event(from: try object(), classID: classID, receivedAt: receivedAt)
            event.traceID = traceID
            return event
        }
    }

    struct UnreadableEvent: Error, CustomStringConvertible {
        var classID: Int64
        var eventID: String
        var description: String { "the stored payload of event \(eventID) of class \(classID) is not a JSON object" }
    }

    /// Events not applied yet, received before `receivedBefore`, oldest first.
    static func unprocessed(limit: Int, receivedBefore: Date = .distantFuture) -> SQLStatement {
        SQLStatement(
            // From the (small) table of keys to the events: CROSS JOIN keeps SQLite from walking
            // the whole events table in id order instead; PostgreSQL plans it the same way.
            """
            SELECT \(Stored.columns) FROM events_unapplied u CROSS JOIN events e
            WHERE e.class_id = u.class_id AND e.event_id = u.event_id AND e.received_at < ? ORDER BY e.id LIMIT ?
            """,
            .integer(receivedBefore.millisecondsSince1970), .integer(Int64(limit))
        )
    }

    /// Forgets the unapplied events of deleted classes (their events went with the class).
    static let forgetDeletedClasses = SQLStatement("DELETE FROM events_unapplied WHERE class_id NOT IN (SELECT id FROM classes)")

    /// A class's events in [from, to), optionally of one student and one of their sessions,
    /// oldest first, paged.
    static func range(classID: Int64, email: String?, sessionID: String? = nil, fromMs: Int64, toMs: Int64, limit: Int, offset: Int) -> SQLStatement {
        var sql = "SELECT \(Stored.columns) FROM events e WHERE class_id = ? AND event_time >= ? AND event_time < ?"
        var arguments: [SQLValue] = [.integer(classID), .integer(fromMs), .integer(toMs)]
        if let email {
            sql += " AND email = ?"
            arguments.append(.text(email))
        }
        if let sessionID {
            sql += " AND session_id = ?"
            arguments.append(.text(sessionID))
        }
        sql += " ORDER BY event_time, id LIMIT ? OFFSET ?"
        arguments += [.integer(Int64(limit)), .integer(Int64(offset))]
        return SQLStatement(sql, arguments: arguments)
    }
}

/// What names an event in the log: its class and event id.
protocol StoredEventKey {
    var classID: Int64 { get }
    var eventID: String { get }
}

extension LearningEvent: StoredEventKey {}
