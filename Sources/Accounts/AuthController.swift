import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// `/auth/login`, `/auth/refresh`, `/auth/logout`, `/auth/me`.
package struct AuthController {
    let auth: AuthService

    struct LoginRequest: Decodable {
        var email: String
        var password: String
    }

    struct RefreshRequest: Decodable {
        var refreshToken: String
    }

    package init(auth: AuthService) {
        self.auth = auth
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/login") { request, context -> Response in
            let body = try await request.decode(as: LoginRequest.self, context: context)
            let user = try await auth.login(email: body.email, password: body.password, clientAddress: context.clientAddress)
            return try JSONResponse(try await auth.issueTokens(for: user)).response
        }
        router.post("/refresh") { request, context -> Response in
            let body = try await request.decode(as: RefreshRequest.self, context: context)
            return try JSONResponse(try await auth.refresh(body.refreshToken)).response
        }
        router.post("/logout") { request, context -> Response in
            let body = try await request.decode(as: RefreshRequest.self, context: context)
            try await auth.logOut(body.refreshToken)
            return Response(status: .noContent)
        }
        router.get("/me") { _, context -> Response in
            let claims = try context.requireUser()
            guard let user = try await auth.accounts.user(id: claims.id) else {
                throw APIError.unauthorized("The user of this token no longer exists.")
            }
            return try JSONResponse(UserView(user)).response
        }
        return router
    }
}

/// A user as the API shows it (never the password hash).
package struct UserView: Encodable {
    var id: Int64
    var email: String
    var role: Role
    var createdAt: Date

    init(_ user: User) {
        id = user.id
        email = user.email
        role = user.role
        createdAt = user.createdAt
    }
}
