import Foundation
import Hummingbird
import PulseboardHTTP

/// Admin management of ingest tokens: `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`;
/// and every user's own API tokens (for Grafana or a script, acting as the user):
/// `GET/POST /api/v1/me/tokens`, `DELETE /api/v1/me/tokens/{id}`.
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

    struct APITokenView: Encodable {
        var id: Int64
        var name: String
        var prefix: String
        var createdAt: Date
        var revokedAt: Date?
        /// The secret itself, present only in the answer that created it.
        var token: String?

        init(_ token: APIToken, secret: String? = nil) {
            id = token.id
            name = token.name
            prefix = token.prefix
            createdAt = token.createdAt
            revokedAt = token.revokedAt
            self.token = secret
        }
    }

    struct APITokenList: Encodable {
        var tokens: [APITokenView]
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
            let name = try await Self.name(request, context)
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
        router.get("/me/tokens") { _, context -> Response in
            let user = try context.requireUser()
            return try JSONResponse(APITokenList(tokens: try await auth.accounts.listAPITokens(userID: user.id).map { APITokenView($0) })).response
        }
        router.post("/me/tokens") { request, context -> Response in
            let user = try context.requireUser()
            let name = try await Self.name(request, context)
            let (token, secret) = try await auth.accounts.createAPIToken(
                userID: user.id, name: name, audit: AuditNote("create", "api-token", details: name, context: context))
            return try JSONResponse(APITokenView(token, secret: secret), status: .created).response
        }
        router.delete("/me/tokens/{id}") { _, context -> Response in
            let user = try context.requireUser()
            guard let id = context.parameters.get("id", as: Int64.self),
                try await auth.accounts.revokeAPIToken(id: id, userID: user.id, audit: AuditNote("revoke", "api-token", context: context))
            else {
                throw APIError.notFound("You have no active API token with this id.")
            }
            return Response(status: .noContent)
        }
        return router
    }

    /// A new token's name: 1 to 100 characters.
    static func name(_ request: Request, _ context: AppRequestContext) async throws -> String {
        let body = try await request.decode(as: CreateToken.self, context: context)
        let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...100).contains(name.count) else {
            throw APIError.unprocessable("A token name has 1 to 100 characters.", details: ["field": .string("name")])
        }
        return name
    }
}
