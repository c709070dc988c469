/// The roles of DESIGN.md: admin manages everything, instructors their classes, students themselves.
public enum Role: String, Codable, Sendable, CaseIterable {
    case admin, instructor, student
}

/// Who is calling: a logged-in user (from a JWT or a browser session) or a machine with an ingest token.
public enum Principal: Sendable, Equatable {
    case user(UserClaims)
    case ingest(tokenID: Int64)

    /// A stable name for scoping idempotency keys and for logs (never a secret).
    package var scope: String {
        switch self {
        case .user(let user): "user:\(user.id)"
        case .ingest(let id): "token:\(id)"
        }
    }
}

public struct UserClaims: Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var role: Role

    package init(id: Int64, email: String, role: Role) {
        self.id = id
        self.email = email
        self.role = role
    }
}
