import Foundation
import Hummingbird
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// Admin user management: `GET/POST /api/v1/users`, `PATCH/DELETE /api/v1/users/{id}`.
package struct UsersController {
    let accounts: Accounts
    let hasher: PasswordHasher
    /// Rings the open WebSockets after a change, so that they re-check what they may see.
    let accessChanged: @Sendable () -> Void

    struct CreateUser: Decodable {
        var email: String
        var password: String
        var role: Role
    }

    struct UpdateUser: Decodable {
        var email: String?
        var password: String?
        var role: Role?
    }

    struct UserList: Encodable {
        var users: [UserView]
    }

    package init(store: any Database, hasher: PasswordHasher, accessChanged: @escaping @Sendable () -> Void) {
        accounts = Accounts(store: store)
        self.hasher = hasher
        self.accessChanged = accessChanged
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/users") { _, context -> Response in
            _ = try context.requireUser([.admin])
            return try JSONResponse(UserList(users: try await accounts.listUsers().map(UserView.init))).response
        }
        router.post("/users") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let body = try await request.decode(as: CreateUser.self, context: context)
            let email = try Self.validated(email: body.email)
            try Self.validate(password: body.password)
            let user = try await accounts.createUser(
                email: email, passwordHash: try await hasher.hash(body.password), role: body.role,
                audit: AuditNote("create", "user", details: "\(email) as \(body.role.rawValue)", context: context))
            return try JSONResponse(UserView(user), status: .created).response
        }
        router.patch("/users/{id}") { request, context -> Response in
            let caller = try context.requireUser([.admin])
            var user = try await user(request, context)
            let body = try await request.decode(as: UpdateUser.self, context: context)
            if let email = body.email { user.email = try Self.validated(email: email) }
            if let password = body.password {
                try Self.validate(password: password)
                user.passwordHash = try await hasher.hash(password)
            }
            if let role = body.role, role != user.role {
                if user.id == caller.id { throw APIError.conflict("You cannot change your own role.") }
                user.role = role
            }
            let changes = [
                body.email.map { "email \($0)" }, body.password.map { _ in "password" }, body.role.map { "role \($0.rawValue)" },
            ].compactMap { $0 }
            try await accounts.updateUser(
                user, audit: AuditNote("change", "user", details: changes.joined(separator: ", "), context: context))
            if body.password != nil || body.role != nil {
                // A changed password or role ends the user's sessions, refresh tokens and access tokens.
                try await accounts.revokeAccess(userID: user.id)
            }
            accessChanged()
            return try JSONResponse(UserView(user)).response
        }
        router.delete("/users/{id}") { request, context -> Response in
            let caller = try context.requireUser([.admin])
            let user = try await user(request, context)
            if user.id == caller.id { throw APIError.conflict("You cannot delete your own account.") }
            _ = try await accounts.deleteUser(id: user.id, audit: AuditNote("delete", "user", details: user.email, context: context))
            accessChanged()
            return Response(status: .noContent)
        }
        return router
    }

    private func user(_ request: Request, _ context: AppRequestContext) async throws -> User {
        guard let id = context.parameters.get("id", as: Int64.self), let user = try await accounts.user(id: id) else {
            throw APIError.notFound("No user with this id.")
        }
        return user
    }

    package static func validated(email: String) throws -> String {
        let email = AuthService.normalise(email: email)
        guard AuthService.isPlausible(email: email) else {
            throw APIError.unprocessable("This is not an email address.", details: ["field": .string("email")])
        }
        return email
    }

    package static func validate(password: String) throws {
        if let problem = PasswordPolicy.problem(with: password) {
            throw APIError.unprocessable(problem, details: ["field": .string("password")])
        }
    }
}
