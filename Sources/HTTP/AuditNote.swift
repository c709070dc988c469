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
        requestID = context.traceID
    }

    /// A change made with the command line on the server's machine (by whoever may run it there):
    /// recorded with actor id 0 and the operating-system user.
    package static func commandLine(_ action: String, _ entity: String, details: String = "") -> AuditNote {
        AuditNote(
            action: action, entity: entity, details: details,
            actor: UserClaims(id: 0, email: "command line (\(ProcessInfo.processInfo.userName))", role: .admin),
            requestID: "cli-" + UUID().uuidString.lowercased())
    }

    private init(action: String, entity: String, details: String, actor: UserClaims, requestID: String) {
        self.action = action
        self.entity = entity
        self.details = details
        self.actor = actor
        self.requestID = requestID
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
