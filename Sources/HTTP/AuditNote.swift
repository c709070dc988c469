import Foundation
import PulseboardDatabase
import PulseboardKernel

/// What to record about a change. The storage function that makes the change writes it, in the
/// change's own transaction (so that neither exists without the other), once it knows the
/// entity's id.
package struct AuditNote: Sendable {
    var action: String
    var entity: String
    var details: String
    var actor: UserClaims
    var requestID: String

    /// Nil for callers that are not users.
    package init?(_ action: String, _ entity: String, details: String = "", context: AppRequestContext) {
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
    package func statement(id: SQLValue, onlyIf condition: SQLValue = .integer(1)) -> SQLStatement {
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
