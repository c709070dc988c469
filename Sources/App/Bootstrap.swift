import Foundation
import PulseboardAccounts
import PulseboardDatabase
import PulseboardKernel

/// First-start chores: the data directory, the JWT secret and the first admin.
package enum Bootstrap {
    static func prepareDataDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// The configured secret; else, when several instances share the database (PostgreSQL), the
    /// one they share in it; else the one kept in `<data>/jwt-secret`, created on first start with
    /// owner-only permissions.
    static func jwtSecret(configured: String?, dataDirectory: String, store: any Database) async throws -> String {
        if let configured { return configured }
        if store.notifications != nil {
            return try await sharedSecret(named: "jwt", proposed: SecretToken.generate(prefix: ""), in: store)
        }
        let path = dataDirectory + "/jwt-secret"
        if let existing = FileManager.default.contents(atPath: path) {
            return String(decoding: existing, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let secret = SecretToken.generate(prefix: "")
        guard FileManager.default.createFile(atPath: path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("Cannot write the JWT secret to \(path).")
        }
        return secret
    }

    /// A secret every instance must agree on: the first instance stores its proposal, every later one reads it.
    private static func sharedSecret(named name: String, proposed: String, in store: any Database) async throws -> String {
        let rows = try await store.transaction([
            SQLStatement("INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", .text(name), .text(proposed)),
            SQLStatement("SELECT value FROM server_secrets WHERE name = ?", .text(name)),
        ])
        guard let secret = rows[1].first?.first?.string else { throw UnexpectedRow(table: "server_secrets", row: rows[1].first ?? []) }
        return secret
    }

    /// Creates the admin when there is no user yet. Returns the password when it was generated,
    /// so that the command line can print it once.
    static func ensureAdmin(store: any Database, hasher: PasswordHasher, email: String, password: String?) async throws -> String? {
        guard try await Accounts(store: store).countUsers() == 0 else { return nil }
        let chosen = password ?? UserAdministration.generatePassword()
        try UsersController.validate(password: chosen)
        _ = try await Accounts(store: store).createUser(
            email: try UsersController.validated(email: email), passwordHash: try await hasher.hash(chosen), role: .admin, audit: nil)
        return password == nil ? chosen : nil
    }
}
