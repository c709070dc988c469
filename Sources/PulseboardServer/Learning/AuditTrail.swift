import Foundation
import Hummingbird

/// Who created, changed or deleted classes, enrolments, assignments, submissions and grades,
/// when, and in which request (its `X-Request-Id`); kept in the database, readable by admins at
/// `GET /api/v1/audit`. Submissions and grades are recorded in the transaction of the change;
/// the others right after it commits.
struct AuditTrail {
    struct Entry: Encodable, Sendable {
        var id: Int64
        var at: String
        var actorId: Int64
        var actorEmail: String
        var action: String
        var entity: String
        var entityId: String
        var requestId: String
        var details: String
    }

    struct Page: Encodable {
        var entries: [Entry]
        var skip: Int
        var limit: Int
    }

    let store: any Store

    /// Records a change that has just been committed (classes, enrolments, assignments).
    func record(_ action: String, _ entity: String, id: some CustomStringConvertible, details: String = "", context: AppRequestContext) async throws {
        guard let entry = Self.entry(action, entity, id: SQLStatement("?", .text(id.description)), details: details, context: context) else { return }
        try await store.transaction([entry])
    }

    /// The audit row of a change, to run in the change's own transaction so that neither exists
    /// without the other. `id` is SQL yielding the entity's id: a bound value, or a subquery for
    /// a row the same transaction creates. Nil for callers that are not users.
    static func entry(_ action: String, _ entity: String, id: SQLStatement, details: String = "", context: AppRequestContext) -> SQLStatement? {
        guard case .user(let actor) = context.principal else { return nil }
        return SQLStatement(
            """
            INSERT INTO audit_log (at, actor_id, actor_email, action, entity, entity_id, request_id, details)
            VALUES (?, ?, ?, ?, ?, CAST((\(id.sql)) AS TEXT), ?, ?)
            """,
            arguments: [.integer(Date().millisecondsSince1970), .integer(actor.id), .text(actor.email), .text(action), .text(entity)] + id.arguments
                + [.text(context.id), .text(details)]
        )
    }

    func addRoutes(to router: some RouterMethods<AppRequestContext>) {
        router.get("/api/v1/audit") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let query = request.uri.queryParameters
            let skip = try HistoryController.integer(query.get("skip"), field: "skip", range: 0...Int(Int32.max)) ?? 0
            let limit = try HistoryController.integer(query.get("limit"), field: "limit", range: 1...1_000) ?? 100
            var sql = "SELECT id, at, actor_id, actor_email, action, entity, entity_id, request_id, details FROM audit_log"
            var arguments: [SQLValue] = []
            if let entity = query.get("entity") {
                sql += " WHERE entity = ?"
                arguments.append(.text(entity))
            }
            sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
            arguments += [.integer(Int64(limit)), .integer(Int64(skip))]
            let entries = try await store.select(SQLStatement(sql, arguments: arguments)).map { row in
                Entry(
                    id: row[0].int ?? 0, at: Timestamp.format(milliseconds: row[1].int ?? 0), actorId: row[2].int ?? 0, actorEmail: row[3].string ?? "",
                    action: row[4].string ?? "", entity: row[5].string ?? "", entityId: row[6].string ?? "", requestId: row[7].string ?? "",
                    details: row[8].string ?? "")
            }
            return try JSONResponse(Page(entries: entries, skip: skip, limit: limit)).response
        }
    }
}
