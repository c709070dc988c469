import HTTPTypes
import Hummingbird
import Logging
import PulseboardKernel

/// One structured log line and the HTTP metrics for every request. The log carries the request id
/// (also sent back as `X-Request-Id`) and the trace id of an incoming W3C `traceparent`. It logs
/// the path without its query string, which is where clients that cannot set headers put tokens.
package struct RequestTelemetryMiddleware<Context: ClientAddressRequestContext>: RouterMiddleware {
    let telemetry: Telemetry

    package init(telemetry: Telemetry) {
        self.telemetry = telemetry
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock()
        let start = clock.now
        var status = 500
        defer {
            let duration = clock.now - start
            let route = context.endpointPath ?? "NotFound"
            telemetry.recordHTTPRequest(method: request.method.rawValue, route: route, status: status, duration: duration)
            // The request id is already in the request logger's metadata (hb.request.id).
            var metadata: Logger.Metadata = [
                "method": .string(request.method.rawValue),
                "path": .string(request.uri.path),
                "route": .string(route),
                "status": .stringConvertible(status),
                "duration_ms": .stringConvertible((duration.seconds * 1000 * 100).rounded() / 100),
                "remote": .string(context.clientAddress),
            ]
            if let traceID = request.headers[HTTPField.Name("traceparent")!].flatMap(Self.traceID) {
                metadata["trace_id"] = .string(traceID)
            }
            context.logger.info("request", metadata: metadata)
        }
        var response = try await next(request, context)
        status = response.status.code
        response.headers[HTTPField.Name("X-Request-Id")!] = context.id
        return response
    }

    /// The trace id of a W3C `traceparent` header: `00-<32 hex>-<16 hex>-<2 hex>`.
    static func traceID(_ header: String) -> String? {
        let parts = header.split(separator: "-")
        guard parts.count == 4, parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit), parts[1] != String(repeating: "0", count: 32) else {
            return nil
        }
        return String(parts[1]).lowercased()
    }
}

/// Security headers on every response; HSTS only when the server is behind TLS.
package struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let behindTLS: Bool

    package init(behindTLS: Bool) {
        self.behindTLS = behindTLS
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[.contentSecurityPolicy] = SecurityHeaders.contentSecurityPolicy
        if behindTLS {
            response.headers[.strictTransportSecurity] = "max-age=31536000; includeSubDomains"
        }
        return response
    }
}

package enum SecurityHeaders {
    /// Pages may load only our own scripts, styles and connections, and may not be framed.
    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
}
