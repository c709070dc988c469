import Foundation

/// First-start chores: the data directory, the JWT secret and the first admin.
enum Bootstrap {
    static func prepareDataDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// The configured secret; else with PostgreSQL the one all instances share in the database;
    /// else the one kept in `<data>/jwt-secret`, created on first start with owner-only permissions.
    static func jwtSecret(configured: String?, dataDirectory: String, store: any Store) async throws -> String {
        if let configured { return configured }
        if let postgres = store as? PostgresStore {
            return try await postgres.sharedSecret(named: "jwt", proposed: SecretToken.generate(prefix: ""))
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

    /// Creates the admin when there is no user yet. Returns the password when it was generated,
    /// so that the command line can print it once.
    static func ensureAdmin(store: any Store, hasher: PasswordHasher, email: String, password: String?) async throws -> String? {
        guard try await store.countUsers() == 0 else { return nil }
        let chosen = password ?? UserAdministration.generatePassword()
        try UsersController.validate(password: chosen)
        _ = try await Accounts(store: store).createUser(
            email: try UsersController.validated(email: email), passwordHash: try await hasher.hash(chosen), role: .admin, audit: nil)
        return password == nil ? chosen : nil
    }
}
