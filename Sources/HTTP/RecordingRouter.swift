import Hummingbird

/// A router front that remembers every route it registers, so that a test can compare the routes
/// with the OpenAPI document.
package final class RecordingRouter: RouterMethods {
    package typealias Context = AppRequestContext

    package struct Route: Hashable, Sendable {
        var method: String
        /// With `{name}` placeholders, as OpenAPI writes them.
        var path: String
    }

    let router: Router<AppRequestContext>
    package private(set) var routes: [Route] = []

    package init(_ router: Router<AppRequestContext>) {
        self.router = router
    }

    @discardableResult package func on<Responder: HTTPResponder>(
        _ path: RouterPath,
        method: HTTPRequest.Method,
        responder: Responder
    ) -> Self where Responder.Context == AppRequestContext {
        routes.append(Route(method: method.rawValue, path: path.description))
        router.on(path, method: method, responder: responder)
        return self
    }

    /// Records a path that a router middleware answers rather than a route (the static files).
    package func recordMiddlewarePath(_ path: String, method: HTTPRequest.Method = .get) {
        routes.append(Route(method: method.rawValue, path: path))
    }

    @discardableResult package func add(middleware: any MiddlewareProtocol<Request, Response, AppRequestContext>) -> Self {
        router.add(middleware: middleware)
        return self
    }
}
