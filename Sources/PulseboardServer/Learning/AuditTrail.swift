import Foundation
import Hummingbird

/// Who created, changed or deleted users, ingest tokens, classes, enrolments, assignments,
/// submissions and grades,
/// when, and in which request (its `X-Request-Id`); kept in the database, readable by admins at
/// `GET /api/v1/audit`. Each row is written in the transaction of the change it records.
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

/// What to record about a change. The storage function that makes the change writes it, in the
/// change's own transaction (so that neither exists without the other), once it knows the
/// entity's id.
struct AuditNote: Sendable {
    var action: String
    var entity: String
    var details: String
    var actor: UserClaims
    var requestID: String

    /// Nil for callers that are not users.
    init?(_ action: String, _ entity: String, details: String = "", context: AppRequestContext) {
        guard case .user(let actor) = context.principal else { return nil }
        self.action = action
        self.entity = entity
        self.details = details
        self.actor = actor
        requestID = context.id
    }

    /// The audit row. `id` may be `.returned(byStatement:)` for a row the transaction creates;
    /// the row is written only when `condition` is not NULL (say, a statement's RETURNING that
    /// is empty when the change did nothing).
    func statement(id: SQLValue, onlyIf condition: SQLValue = .integer(1)) -> SQLStatement {
        SQLStatement(
            """
            INSERT INTO audit_log (at, actor_id, actor_email, action, entity, entity_id, request_id, details)
            SELECT ?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ? WHERE CAST(? AS TEXT) IS NOT NULL
            """,
            .integer(Date().millisecondsSince1970), .integer(actor.id), .text(actor.email), .text(action), .text(entity), id, .text(requestID),
            .text(details), condition
        )
    }
}
