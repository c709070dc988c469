import Foundation
import Hummingbird
import PulseboardHTTP

/// Admin management of ingest tokens: `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`.
package struct TokensController {
    let auth: AuthService

    struct CreateToken: Decodable {
        var name: String
    }

    struct TokenView: Encodable {
        var id: Int64
        var name: String
        var prefix: String
        var createdAt: Date
        var revokedAt: Date?
        /// The secret itself, present only in the answer that created it.
        var token: String?

        init(_ token: IngestToken, secret: String? = nil) {
            id = token.id
            name = token.name
            prefix = token.prefix
            createdAt = token.createdAt
            revokedAt = token.revokedAt
            self.token = secret
        }
    }

    struct TokenList: Encodable {
        var tokens: [TokenView]
    }

    package init(auth: AuthService) {
        self.auth = auth
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/tokens") { _, context -> Response in
            _ = try context.requireUser([.admin])
            return try JSONResponse(TokenList(tokens: try await auth.accounts.listIngestTokens().map { TokenView($0) })).response
        }
        router.post("/tokens") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let body = try await request.decode(as: CreateToken.self, context: context)
            let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...100).contains(name.count) else {
                throw APIError.unprocessable("A token name has 1 to 100 characters.", details: ["field": .string("name")])
            }
            let (token, secret) = try await auth.accounts.createIngestToken(
                name: name, audit: AuditNote("create", "ingest-token", details: name, context: context))
            return try JSONResponse(TokenView(token, secret: secret), status: .created).response
        }
        router.delete("/tokens/{id}") { _, context -> Response in
            _ = try context.requireUser([.admin])
            guard let id = context.parameters.get("id", as: Int64.self),
                try await auth.accounts.revokeIngestToken(id: id, audit: AuditNote("revoke", "ingest-token", context: context))
            else {
                throw APIError.notFound("No active ingest token with this id.")
            }
            return Response(status: .noContent)
        }
        return router
    }
}
