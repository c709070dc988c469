import Foundation
import HTTPTypes
import Hummingbird
import PulseboardKernel
import Synchronization

/// Requests per client in fixed windows (`--rate-limit` per `--rate-limit-period`): a client is a
/// user, an ingest token, a class token (every student of a class shares it, and a classroom
/// often shares one public address), or else an address. It lives in memory, per instance.
package final class RateLimiter: Sendable {
    package struct Limit: Sendable {
        package var requests: Int
        package var period: Duration

        package init(requests: Int, period: Duration) {
            self.requests = requests
            self.period = period
        }
    }

    /// Where a client stands after a request.
    struct Verdict: Equatable {
        var allowed: Bool
        var remaining: Int
        /// Whole seconds until the window starts again.
        var resetSeconds: Int
    }

    let limit: Limit
    private let windows = Mutex<[String: (start: ContinuousClock.Instant, count: Int)]>([:])

    package init(limit: Limit) {
        self.limit = limit
    }

    func take(_ client: String, now: ContinuousClock.Instant = .now) -> Verdict {
        windows.withLock { windows in
            if windows.count > 10_000 {
                // Bounded under a spray of addresses: forget windows that have ended.
                windows = windows.filter { now - $0.value.start < limit.period }
            }
            var window = windows[client] ?? (now, 0)
            if now - window.start >= limit.period { window = (now, 0) }
            window.count += 1
            windows[client] = window
            let reset = Int((limit.period - (now - window.start)).seconds.rounded(.up))
            return Verdict(allowed: window.count <= limit.requests, remaining: max(0, limit.requests - window.count), resetSeconds: max(1, reset))
        }
    }
}

/// Answers 429 with `Retry-After` past the limit, and tells every client where it stands in the
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers. Health checks and
/// Prometheus scrapes are not limited.
package struct RateLimitMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext
    let limiter: RateLimiter

    package init(limiter: RateLimiter) {
        self.limiter = limiter
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !["/health", "/metrics"].contains(request.uri.path), !request.uri.path.hasPrefix("/static/") else {
            return try await next(request, context)
        }
        let verdict = limiter.take(Self.client(request, context))
        var headers: HTTPFields = [
            Self.limitHeader: String(limiter.limit.requests), Self.remainingHeader: String(verdict.remaining),
            Self.resetHeader: String(verdict.resetSeconds),
        ]
        guard verdict.allowed else {
            var error = APIError.tooManyRequests(
                retryAfter: verdict.resetSeconds,
                "More than \(limiter.limit.requests) requests in \(Int(limiter.limit.period.seconds)) s; try again in \(verdict.resetSeconds) s.")
            headers.append(contentsOf: error.headers)
            error.headers = headers
            throw error
        }
        var response = try await next(request, context)
        response.headers.append(contentsOf: headers)
        return response
    }

    /// Who counts: the caller's identity when it has one, else the class token of an event URL,
    /// else the client's address.
    static func client(_ request: Request, _ context: Context) -> String {
        if let principal = context.principal { return principal.scope }
        if let token = request.uri.queryParameters.get("token"), !token.isEmpty {
            return "class-token:" + SecretToken.hash(token).prefix(16)
        }
        return "address:" + context.clientAddress
    }

    static let limitHeader = HTTPField.Name("RateLimit-Limit")!
    static let remainingHeader = HTTPField.Name("RateLimit-Remaining")!
    static let resetHeader = HTTPField.Name("RateLimit-Reset")!
}
