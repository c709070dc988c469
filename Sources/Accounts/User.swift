import Foundation
import PulseboardKernel

/// An account. Decoded from `users` by column name.
public struct User: Sendable, Equatable, Decodable {
    public var id: Int64
    public var email: String
    public var role: Role
    public var passwordHash: String
    public var createdAt: Date
    /// Raised whenever the user's access must end; an access token names the generation it was
    /// issued for and is refused once they differ.
    public var tokenGeneration: Int64 = 0
}

/// A machine credential that may only ingest. The secret itself is never stored, only its SHA-256.
public struct IngestToken: Sendable, Equatable, Decodable {
    public var id: Int64
    public var name: String
    public var prefix: String
    public var createdAt: Date
    public var revokedAt: Date?
}

/// A user's own long-lived credential for tools that cannot log in (Grafana, scripts): it acts
/// as the user, with the role the database gives them at each request. Stored as SHA-256.
public struct APIToken: Sendable, Equatable, Decodable {
    public var id: Int64
    public var userId: Int64
    public var name: String
    public var prefix: String
    public var createdAt: Date
    public var revokedAt: Date?
}

/// A session kind: both are stored in `sessions` as the SHA-256 of their secret, and belong to a
/// family (a login and every refresh token rotated from it).
public enum SessionKind: String, Sendable {
    /// An API refresh token: rotated on every use.
    case refresh
    /// A browser session cookie.
    case browser
}
