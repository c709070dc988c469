import Crypto
import Foundation
import HummingbirdBcrypt
import JWTKit
import NIOPosix
import PulseboardKernel

/// The claims of an access token. `exp` is enforced on every verification; `gen` is the user's
/// token generation when it was issued, checked against the database on every request.
package struct AccessTokenPayload: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var gen: Int64
    var email: String
    var role: Role

    package func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Issues and verifies access tokens: HS256 only (the key collection holds one HMAC key, so a
/// token claiming any other algorithm, `none` included, fails verification).
public struct AccessTokens: Sendable {
    public static let minimumSecretBytes = 32
    let keys: JWTKeyCollection
    public let lifetime: Duration

    public init(secret: String, lifetime: Duration) async throws {
        guard secret.utf8.count >= Self.minimumSecretBytes else {
            throw ConfigurationError("The JWT secret must be at least \(Self.minimumSecretBytes) bytes long.")
        }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.lifetime = lifetime
    }

    func issue(for user: User, now: Date = Date()) async throws -> String {
        let payload = AccessTokenPayload(
            sub: .init(value: String(user.id)),
            exp: .init(value: now.addingTimeInterval(lifetime.seconds)),
            iat: .init(value: now),
            gen: user.tokenGeneration,
            email: user.email,
            role: user.role
        )
        return try await keys.sign(payload)
    }

    /// The user and generation of a valid token, or nil for an invalid, expired or foreign one.
    func verify(_ token: String) async -> (userID: Int64, generation: Int64)? {
        guard let payload = try? await keys.verify(token, as: AccessTokenPayload.self),
            let id = Int64(payload.sub.value)
        else { return nil }
        return (id, payload.gen)
    }
}

/// bcrypt, run on NIO's blocking thread pool so that it never stalls the cooperative pool.
public struct PasswordHasher: Sendable {
    /// The lowest cost an operator may configure (the command line refuses less); tests use
    /// bcrypt's own minimum, 4, so that hundreds of accounts made at once do not queue for seconds.
    public static let minimumCost: UInt8 = 10
    public static let defaultCost: UInt8 = 12
    let cost: UInt8

    public init(cost: UInt8) {
        self.cost = min(max(cost, 4), 31)
    }

    package func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
