import Foundation
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// Login, tokens and sessions: the logic shared by the JSON API (`/auth/...`), the browser login
/// form and the WebSocket, so that every door checks credentials the same way.
public struct AuthService: Authenticating {
    package let accounts: Accounts
    let accessTokens: AccessTokens
    let hasher: PasswordHasher
    let limiter: LoginLimiter
    let refreshLifetime: Duration
    package let sessionLifetime: Duration
    /// The users that requests were checked against, forgotten on every access change.
    let recentUsers: RecentUsers
    /// Rings the open WebSockets (on every instance) after a logout or a replayed refresh token.
    let accessChanged: @Sendable () -> Void
    /// A bcrypt hash of a random secret: verified against when the email is unknown, so that an
    /// unknown email and a wrong password take the same time and give the same answer.
    let decoyHash: String

    package init(
        store: any Database,
        accessTokens: AccessTokens,
        hasher: PasswordHasher,
        limiter: LoginLimiter,
        refreshLifetime: Duration,
        sessionLifetime: Duration,
        recentUsers: RecentUsers,
        accessChanged: @escaping @Sendable () -> Void
    ) async throws {
        accounts = Accounts(store: store)
        self.accessTokens = accessTokens
        self.hasher = hasher
        self.limiter = limiter
        self.refreshLifetime = refreshLifetime
        self.sessionLifetime = sessionLifetime
        self.recentUsers = recentUsers
        self.accessChanged = accessChanged
        decoyHash = try await hasher.hash(SecretToken.generate(prefix: ""))
    }

    static let refreshTokenPrefix = "pbr_"
    static let sessionPrefix = "pbs_"

    struct TokenPair: Encodable {
        var accessToken: String
        var tokenType = "bearer"
        var expiresIn: Int
        var refreshToken: String
    }

    /// Checks an email and password, honouring the login rate limits.
    package func login(email rawEmail: String, password: String, clientAddress: String) async throws -> User {
        let email = Self.normalise(email: rawEmail)
        // bcrypt reads only 72 bytes, so no stored password is longer: refuse without hashing.
        guard password.utf8.count <= PasswordPolicy.maximumBytes else {
            throw APIError.unprocessable("A password has at most \(PasswordPolicy.maximumBytes) bytes.", details: ["field": .string("password")])
        }
        if let wait = limiter.retryAfter(account: email, address: clientAddress) {
            throw APIError.tooManyRequests(retryAfter: wait, "Too many failed logins; try again later.")
        }
        let user = try await accounts.user(email: email)
        let valid = try await hasher.verify(password, hash: user?.passwordHash ?? decoyHash)
        guard let user, valid else {
            limiter.recordFailure(account: email, address: clientAddress)
            throw APIError.unauthorized("Wrong email or password.")
        }
        limiter.recordSuccess(account: email)
        return user
    }

    /// A new access token and refresh token; the refresh token starts a family unless it is
    /// rotated from one.
    func issueTokens(for user: User, family: String? = nil) async throws -> TokenPair {
        let refreshToken = SecretToken.generate(prefix: Self.refreshTokenPrefix)
        let hash = SecretToken.hash(refreshToken)
        try await accounts.insertSession(
            hash: hash,
            userID: user.id,
            kind: .refresh,
            family: family ?? hash,
            expiresAt: Date().addingTimeInterval(refreshLifetime.seconds)
        )
        return TokenPair(
            accessToken: try await accessTokens.issue(for: user),
            expiresIn: Int(accessTokens.lifetime.seconds),
            refreshToken: refreshToken
        )
    }

    /// Exchanges a refresh token for a new pair; the old refresh token stops working. A token
    /// that was already used is a replay (of a stolen token, or by its thief): the whole family
    /// and the user's access tokens end, so neither side keeps a working token.
    func refresh(_ refreshToken: String) async throws -> TokenPair {
        let hash = SecretToken.hash(refreshToken)
        guard let used = try await accounts.useRefreshToken(hash: hash, now: Date()),
            let user = try await accounts.user(id: used.userID)
        else {
            if try await accounts.endSessionFamily(ofToken: hash) { accessChanged() }
            throw APIError.unauthorized("The refresh token is invalid, expired or revoked.")
        }
        return try await issueTokens(for: user, family: used.family)
    }

    /// Logs out: ends the token's family (a refresh token and its rotations, or a browser
    /// session) and the user's access tokens.
    package func logOut(_ token: String) async throws {
        if try await accounts.endSessionFamily(ofToken: SecretToken.hash(token)) { accessChanged() }
    }

    /// Opens a browser session and returns the cookie value.
    package func openBrowserSession(for user: User) async throws -> String {
        let token = SecretToken.generate(prefix: Self.sessionPrefix)
        let hash = SecretToken.hash(token)
        try await accounts.insertSession(
            hash: hash,
            userID: user.id,
            kind: .browser,
            family: hash,
            expiresAt: Date().addingTimeInterval(sessionLifetime.seconds)
        )
        return token
    }

    /// Resolves a bearer credential: an ingest token or an access token. An access token counts
    /// only while its user exists with the generation it names, and carries the user's role as
    /// the database has it now: a demotion, deletion, logout or password change ends it at once,
    /// on every instance (the user is read by primary key, or taken from `recentUsers`, which
    /// every such change empties).
    func principal(bearer token: String) async throws -> Principal? {
        if token.hasPrefix(Accounts.ingestTokenPrefix) {
            return try await accounts.activeIngestToken(hash: SecretToken.hash(token)).map { .ingest(tokenID: $0.id) }
        }
        if token.hasPrefix(Accounts.apiTokenPrefix) {
            guard let userID = try await accounts.activeAPITokenUser(hash: SecretToken.hash(token)), let user = try await checkedUser(id: userID) else {
                return nil
            }
            return .user(UserClaims(id: user.id, email: user.email, role: user.role))
        }
        guard let (userID, generation) = await accessTokens.verify(token), let user = try await checkedUser(id: userID),
            user.tokenGeneration == generation
        else { return nil }
        return .user(UserClaims(id: user.id, email: user.email, role: user.role))
    }

    /// Resolves a credential: the bearer token of an API call or a WebSocket, or a session cookie.
    package func principal(_ credential: Credential) async throws -> Principal? {
        switch credential {
        case .bearer(let token): try await principal(bearer: token)
        case .session(let token): try await principal(session: token)
        }
    }

    /// Resolves a browser session cookie.
    func principal(session token: String) async throws -> Principal? {
        guard let userID = try await accounts.sessionUser(hash: SecretToken.hash(token), kind: .browser, now: Date()),
            let user = try await checkedUser(id: userID)
        else { return nil }
        return .user(UserClaims(id: user.id, email: user.email, role: user.role))
    }

    private func checkedUser(id: Int64) async throws -> User? {
        try await recentUsers.user(id: id) { try await accounts.user(id: id) }
    }

    package static func normalise(email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    package static func isPlausible(email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return email.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !email.contains(where: \.isWhitespace)
    }
}
