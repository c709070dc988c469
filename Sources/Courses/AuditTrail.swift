import Foundation
import Hummingbird
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// Who created, changed or deleted users, ingest tokens, classes, enrolments, assignments,
/// submissions and grades,
/// when, and in which request (its `X-Request-Id`); kept in the database, readable by admins at
/// `GET /api/v1/audit`. Each row is written in the transaction of the change it records.
package struct AuditTrail {
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

    /// A row of `audit_log`, decoded by column name.
    struct Row: Decodable {
        var id: Int64
        var at: Date
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

    let store: any Database

    package init(store: any Database) {
        self.store = store
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/audit") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let query = request.uri.queryParameters
            let skip = try QueryParameter.integer(query.get("skip"), field: "skip", range: 0...Int(Int32.max)) ?? 0
            let limit = try QueryParameter.integer(query.get("limit"), field: "limit", range: 1...1_000) ?? 100
            var sql = "SELECT id, at, actor_id, actor_email, action, entity, entity_id, request_id, details FROM audit_log"
            var arguments: [SQLValue] = []
            if let entity = query.get("entity") {
                sql += " WHERE entity = ?"
                arguments.append(.text(entity))
            }
            sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
            arguments += [.integer(Int64(limit)), .integer(Int64(skip))]
            let entries = try await store.select(SQLStatement(sql, arguments: arguments), as: Row.self).map { row in
                Entry(
                    id: row.id, at: Timestamp.format(row.at), actorId: row.actorId, actorEmail: row.actorEmail, action: row.action, entity: row.entity,
                    entityId: row.entityId, requestId: row.requestId, details: row.details)
            }
            return try JSONResponse(Page(entries: entries, skip: skip, limit: limit)).response
        }
        return router
    }
}
