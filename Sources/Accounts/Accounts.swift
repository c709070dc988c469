import Foundation
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// Users, their sessions and ingest tokens in the database, written once in portable SQL for
/// both engines; changes to users and tokens with their audit row in the same transaction (the
/// API's and the command line's; only the first start's admin is created without one).
package struct Accounts: Sendable {
    let store: any Database

    package init(store: any Database) {
        self.store = store
    }

    // MARK: Reads

    private static let userColumns = "id, email, role, password_hash, created_at, token_generation"

    package func user(id: Int64) async throws -> User? {
        try await users("SELECT \(Self.userColumns) FROM users WHERE id = ?", .integer(id)).first
    }

    package func user(email: String) async throws -> User? {
        try await users("SELECT \(Self.userColumns) FROM users WHERE email = ?", .text(email)).first
    }

    package func listUsers() async throws -> [User] {
        try await users("SELECT \(Self.userColumns) FROM users ORDER BY id")
    }

    package func countUsers() async throws -> Int {
        try await count("SELECT COUNT(*) FROM users")
    }

    private func users(_ sql: String, _ arguments: SQLValue...) async throws -> [User] {
        try await store.select(SQLStatement(sql, arguments: arguments), as: User.self)
    }

    private func count(_ sql: String) async throws -> Int {
        Int(try await store.selectCount(SQLStatement(sql)))
    }

    /// The user of an unexpired, unused session, without consuming it.
    func sessionUser(hash: String, kind: SessionKind, now: Date) async throws -> Int64? {
        try await store.selectValue(
            SQLStatement(
                "SELECT user_id FROM sessions WHERE token_hash = ? AND kind = ? AND expires_at > ? AND used_at IS NULL",
                .text(hash), .text(kind.rawValue), .integer(now.millisecondsSince1970))
        )?.int
    }

    private static let tokenColumns = "id, name, prefix, created_at, revoked_at"

    package func listIngestTokens() async throws -> [IngestToken] {
        try await ingestTokens(SQLStatement("SELECT \(Self.tokenColumns) FROM ingest_tokens ORDER BY id"))
    }

    func activeIngestToken(hash: String) async throws -> IngestToken? {
        try await ingestTokens(SQLStatement("SELECT \(Self.tokenColumns) FROM ingest_tokens WHERE token_hash = ? AND revoked_at IS NULL", .text(hash)))
            .first
    }

    private func ingestTokens(_ statement: SQLStatement) async throws -> [IngestToken] {
        try await store.select(statement, as: IngestToken.self)
    }

    package func listAPITokens(userID: Int64) async throws -> [APIToken] {
        try await store.select(
            SQLStatement("SELECT id, user_id, name, prefix, created_at, revoked_at FROM api_tokens WHERE user_id = ? ORDER BY id", .integer(userID)),
            as: APIToken.self)
    }

    /// The user of an API token that is not revoked.
    func activeAPITokenUser(hash: String) async throws -> Int64? {
        try await store.selectValue(SQLStatement("SELECT user_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL", .text(hash)))?.int
    }

    // MARK: Changes

    /// Starts a session (an API refresh token or a browser session), stored as the SHA-256 of its secret.
    func insertSession(hash: String, userID: Int64, kind: SessionKind, family: String, expiresAt: Date) async throws {
        try await store.transaction([
            SQLStatement(
                "INSERT INTO sessions (token_hash, user_id, kind, family, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                .text(hash), .integer(userID), .text(kind.rawValue), .text(family), .integer(Date().millisecondsSince1970),
                .integer(expiresAt.millisecondsSince1970))
        ])
    }

    /// Retention: sessions past their expiry.
    package func deleteExpiredSessions(now: Date) async throws {
        try await store.transaction([SQLStatement("DELETE FROM sessions WHERE expires_at <= ?", .integer(now.millisecondsSince1970))])
    }

    package func createUser(email: String, passwordHash: String, role: Role, audit: AuditNote?) async throws -> User {
        let now = Date()
        let results = try await transaction(
            SQLStatement(
                "INSERT INTO users (email, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                .text(email), .text(passwordHash), .text(role.rawValue), .integer(now.millisecondsSince1970)
            ), audit: audit, conflict: Self.emailTaken)
        guard let id = results.first?.first?.int else { throw StoreError.unavailable("the new user was not returned") }
        return User(id: id, email: email, role: role, passwordHash: passwordHash, createdAt: now.truncatedToMilliseconds)
    }

    func updateUser(_ user: User, audit: AuditNote?) async throws {
        try await transaction(
            SQLStatement(
                "UPDATE users SET email = ?, role = ?, password_hash = ? WHERE id = ? RETURNING id",
                .text(user.email), .text(user.role.rawValue), .text(user.passwordHash), .integer(user.id)
            ), audit: audit, conflict: Self.emailTaken)
    }

    /// False when there was no such user.
    func deleteUser(id: Int64, audit: AuditNote?) async throws -> Bool {
        try await !transaction(SQLStatement("DELETE FROM users WHERE id = ? RETURNING id", .integer(id)), audit: audit).isEmpty
    }

    static let emailTaken = "A user with this email exists."
    static let ingestTokenPrefix = "pbi_"

    /// Creates an ingest token; the secret is returned once and only its hash is kept.
    func createIngestToken(name: String, audit: AuditNote?) async throws -> (IngestToken, secret: String) {
        let secret = SecretToken.generate(prefix: Self.ingestTokenPrefix)
        let prefix = String(secret.prefix(Self.ingestTokenPrefix.count + 6))
        let now = Date()
        let results = try await transaction(
            SQLStatement(
                "INSERT INTO ingest_tokens (name, token_hash, prefix, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                .text(name), .text(SecretToken.hash(secret)), .text(prefix), .integer(now.millisecondsSince1970)
            ), audit: audit)
        guard let id = results.first?.first?.int else { throw StoreError.unavailable("the new token was not returned") }
        return (IngestToken(id: id, name: name, prefix: prefix, createdAt: now.truncatedToMilliseconds), secret)
    }

    static let apiTokenPrefix = "pbu_"

    /// Creates an API token of a user; the secret is returned once and only its hash is kept.
    package func createAPIToken(userID: Int64, name: String, audit: AuditNote?) async throws -> (APIToken, secret: String) {
        let secret = SecretToken.generate(prefix: Self.apiTokenPrefix)
        let prefix = String(secret.prefix(Self.apiTokenPrefix.count + 6))
        let now = Date()
        let results = try await transaction(
            SQLStatement(
                "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                .integer(userID), .text(name), .text(SecretToken.hash(secret)), .text(prefix), .integer(now.millisecondsSince1970)
            ), audit: audit)
        guard let id = results.first?.first?.int else { throw StoreError.unavailable("the new token was not returned") }
        return (APIToken(id: id, userId: userID, name: name, prefix: prefix, createdAt: now.truncatedToMilliseconds), secret)
    }

    /// False when the user has no such active token.
    func revokeAPIToken(id: Int64, userID: Int64, audit: AuditNote?) async throws -> Bool {
        try await !transaction(
            SQLStatement(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL RETURNING id",
                .integer(Date().millisecondsSince1970), .integer(id), .integer(userID)), audit: audit
        ).isEmpty
    }

    /// False when there was no such active token.
    func revokeIngestToken(id: Int64, audit: AuditNote?) async throws -> Bool {
        try await !transaction(
            SQLStatement(
                "UPDATE ingest_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id", .integer(Date().millisecondsSince1970),
                .integer(id)), audit: audit
        ).isEmpty
    }

    /// Marks an unused, unexpired refresh token used (it stays, so that a replay is recognised)
    /// and returns its user and family; nil when it is unknown, expired or already used.
    func useRefreshToken(hash: String, now: Date) async throws -> UsedRefreshToken? {
        let now = SQLValue.integer(now.millisecondsSince1970)
        let rows = try await store.transaction([
            SQLStatement(
                """
                UPDATE sessions SET used_at = ? WHERE token_hash = ? AND kind = 'refresh' AND expires_at > ? AND used_at IS NULL
                RETURNING user_id, family
                """,
                now, .text(hash), now
            )
        ])
        guard let row = rows.first?.first else { return nil }
        return try NamedRow.decode(row, columns: ["user_id", "family"], as: UsedRefreshToken.self)
    }

    struct UsedRefreshToken: Decodable {
        var userID: Int64
        var family: String
    }

    /// Ends the family of the session with this hash (every token of it, used or not) and the
    /// user's access tokens. False when no session has this hash.
    func endSessionFamily(ofToken hash: String) async throws -> Bool {
        let results = try await store.transaction([
            SQLStatement(
                "UPDATE users SET token_generation = token_generation + 1 WHERE id = (SELECT user_id FROM sessions WHERE token_hash = ?) RETURNING id",
                .text(hash)),
            SQLStatement("DELETE FROM sessions WHERE family = (SELECT family FROM sessions WHERE token_hash = ?)", .text(hash)),
        ])
        return !results[0].isEmpty
    }

    /// Ends every session, refresh token and access token of a user (role or password changed).
    func revokeAccess(userID: Int64) async throws {
        try await store.transaction([
            SQLStatement("DELETE FROM sessions WHERE user_id = ?", .integer(userID)),
            SQLStatement("UPDATE users SET token_generation = token_generation + 1 WHERE id = ?", .integer(userID)),
        ])
    }

    /// Runs a change that returns the id of the row it changed, with the audit row for that id
    /// (written only when the change did something); returns the change's rows. A unique value
    /// taken is a conflict, with `conflict` as its message when given.
    @discardableResult
    private func transaction(_ change: SQLStatement, audit: AuditNote?, conflict: String? = nil) async throws -> [SQLRow] {
        do {
            let note = audit?.statement(id: .returned(byStatement: 0), onlyIf: .returned(byStatement: 0))
            return try await store.transaction([change] + [note].compactMap { $0 }).first ?? []
        } catch StoreError.conflict(let message) {
            throw StoreError.conflict(conflict ?? message)
        }
    }
}
