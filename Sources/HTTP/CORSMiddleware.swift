import HTTPTypes
import Hummingbird

/// CORS for the API from the browser origins an operator lists (`--cors-origins`): those may call
/// with credentials; any other origin gets no CORS headers, so browsers keep it out. The ingest
/// routes set their own, open policy, which this leaves alone.
package struct ListedOriginsMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    let origins: Set<String>

    package init(origins: Set<String>) {
        self.origins = origins
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) else { return try await next(request, context) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type, Idempotency-Key, X-CSRF-Token"
            response.headers[.accessControlMaxAge] = "600"
            return allow(origin, response)
        }
        let response = try await next(request, context)
        return response.headers[.accessControlAllowOrigin] == nil ? allow(origin, response) : response
    }

    private func allow(_ origin: String, _ response: Response) -> Response {
        var response = response
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlAllowCredentials] = "true"
        response.headers[.vary] = "Origin"
        return response
    }
}
