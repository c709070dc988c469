import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PulseboardKernel
import PulseboardTracing
import Synchronization

/// For every request: one structured log line, the HTTP metrics, and a row of the request log
/// (`OperationsLog`, unless it is switched off). The request's trace id comes from an incoming
/// `traceparent` or `X-Request-Id` when well-formed, else is made here; it is in every log line
/// of the request, in the request log, in the steps of the work the request starts, and sent
/// back as `X-Request-Id`. Logs name the path without its query string, which is where clients
/// that cannot set headers put tokens.
package struct RequestTelemetryMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext
    let telemetry: Telemetry
    let requestLog: OperationsLog?

    package init(telemetry: Telemetry, requestLog: OperationsLog?) {
        self.telemetry = telemetry
        self.requestLog = requestLog
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock()
        let start = clock.now
        let startDate = Date()
        var context = context
        let traceID =
            TraceID.incoming(traceparent: request.headers[HTTPField.Name("traceparent")!], requestID: request.headers[Self.requestIDHeader])
            ?? TraceID.generate()
        context.traceID = traceID
        context.logger[metadataKey: "trace_id"] = .string(traceID)
        var request = request
        let requestBody = requestLog == nil ? nil : await Self.capturedJSON(&request)

        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            logAndMeasure(request, context, status: status, duration: clock.now - start)
            record(
                request, context, at: startDate, requestBody: requestBody, status: status, responseHeaders: [], duration: clock.now - start, responseBody: nil)
            throw error
        }
        response.headers[Self.requestIDHeader] = traceID
        let duration = clock.now - start
        logAndMeasure(request, context, status: response.status.code, duration: duration)
        guard requestLog != nil else { return response }
        let status = response.status.code
        let responseHeaders = response.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        guard Self.isJSON(response.headers[.contentType]), let length = response.body.contentLength, length <= Redaction.maxCapturedBodyBytes
        else {
            record(
                request, context, at: startDate, requestBody: requestBody, status: status, responseHeaders: responseHeaders, duration: duration,
                responseBody: nil)
            return response
        }
        // The body is written after this returns: copy it as it goes out, record when it is out.
        let captured = Mutex(ByteBuffer())
        let original = response.body
        let (sentRequest, finalContext) = (request, context)
        response.body = ResponseBody(contentLength: length) { writer in
            defer {
                let body = captured.withLock { Redaction.jsonBody(Data(buffer: $0)) }
                record(
                    sentRequest, finalContext, at: startDate, requestBody: requestBody, status: status, responseHeaders: responseHeaders, duration: duration,
                    responseBody: body)
            }
            try await original.write(
                writer.map { buffer in
                    captured.withLock { $0.writeImmutableBuffer(buffer) }
                    return buffer
                })
        }
        return response
    }

    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    private func logAndMeasure(_ request: Request, _ context: Context, status: Int, duration: Duration) {
        let route = context.endpointPath ?? "NotFound"
        telemetry.recordHTTPRequest(method: request.method.rawValue, route: route, status: status, duration: duration)
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue),
                "path": .string(request.uri.path),
                "route": .string(route),
                "status": .stringConvertible(status),
                "duration_ms": .stringConvertible((duration.seconds * 1000 * 100).rounded() / 100),
                "remote": .string(context.clientAddress),
            ])
    }

    private func record(
        _ request: Request, _ context: Context, at date: Date, requestBody: String?, status: Int, responseHeaders: [(name: String, value: String)],
        duration: Duration, responseBody: String?
    ) {
        requestLog?.record(
            .request(
                RequestRecord(
                    traceID: context.traceID, createdAt: date, method: request.method.rawValue, route: context.endpointPath ?? "NotFound",
                    endpoint: request.uri.path,
                    requestHeader: Redaction.headers(request.headers.map { (name: $0.name.canonicalName, value: $0.value) }),
                    requestBody: requestBody, responseStatus: status, responseHeader: Redaction.headers(responseHeaders), responseBody: responseBody,
                    durationMs: (duration.seconds * 1000 * 100).rounded() / 100, ipAddress: context.clientAddress, userID: context.caller.userID)))
    }

    /// A small JSON request body, redacted, for the log: read here (and left in the request for
    /// its handler) only when its length is declared and at most `Redaction.maxCapturedBodyBytes`;
    /// compressed or larger bodies are not kept.
    private static func capturedJSON(_ request: inout Request) async -> String? {
        guard isJSON(request.headers[.contentType]), request.headers[.contentEncoding] == nil,
            let length = request.headers[.contentLength].flatMap(Int.init), length <= Redaction.maxCapturedBodyBytes,
            let body = try? await request.collectBody(upTo: Redaction.maxCapturedBodyBytes)
        else { return nil }
        return Redaction.jsonBody(Data(buffer: body))
    }

    private static func isJSON(_ contentType: String?) -> Bool {
        contentType?.lowercased().contains("json") == true
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
