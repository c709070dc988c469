import Foundation
import PulseboardDatabase
import PulseboardKernel

/// The user and token chores of the command line, with the same validation as the API.
public enum UserAdministration {
    static let hasher = PasswordHasher(cost: PasswordHasher.defaultCost)

    public static func create(email: String, password: String, role: Role, in store: any Database) async throws -> User {
        try UsersController.validate(password: password)
        return try await Accounts(store: store).createUser(
            email: try UsersController.validated(email: email), passwordHash: try await hasher.hash(password), role: role,
            audit: .commandLine("create", "user", details: "\(email) as \(role.rawValue)"))
    }

    public static func setRole(email: String, role: Role, in store: any Database) async throws {
        var user = try await existing(email, in: store)
        user.role = role
        try await Accounts(store: store).updateUser(user, audit: .commandLine("change", "user", details: "role \(role.rawValue)"))
        try await Accounts(store: store).revokeAccess(userID: user.id)
    }

    public static func resetPassword(email: String, password: String, in store: any Database) async throws {
        try UsersController.validate(password: password)
        var user = try await existing(email, in: store)
        user.passwordHash = try await hasher.hash(password)
        try await Accounts(store: store).updateUser(user, audit: .commandLine("change", "user", details: "password"))
        try await Accounts(store: store).revokeAccess(userID: user.id)
    }

    public static func createIngestToken(name: String, in store: any Database) async throws -> (IngestToken, secret: String) {
        try await Accounts(store: store).createIngestToken(name: name, audit: .commandLine("create", "ingest-token", details: name))
    }

    /// An API token for a user (Grafana's data source, a script), acting as that user.
    public static func createAPIToken(name: String, email: String, in store: any Database) async throws -> (APIToken, secret: String) {
        let user = try await existing(email, in: store)
        return try await Accounts(store: store).createAPIToken(
            userID: user.id, name: name, audit: .commandLine("create", "api-token", details: "\(name) for \(email)"))
    }

    /// False when there was no such active token.
    public static func revokeIngestToken(id: Int64, in store: any Database) async throws -> Bool {
        try await Accounts(store: store).revokeIngestToken(id: id, audit: .commandLine("revoke", "ingest-token"))
    }

    public static func generatePassword() -> String {
        String(SecretToken.generate(prefix: "").prefix(20))
    }

    private static func existing(_ email: String, in store: any Database) async throws -> User {
        guard let user = try await Accounts(store: store).user(email: AuthService.normalise(email: email)) else {
            throw ConfigurationError("No user with email \(email).")
        }
        return user
    }
}
