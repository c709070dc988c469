import Foundation
import HTTPTypes
import Hummingbird
import PulseboardHTTP

/// Refuses a query parameter that Pulseboard's own API (`/api/v1/…`, `/auth/…`) does not take,
/// so that a misspelt filter is a 400 instead of an unfiltered list. Which parameters each
/// operation takes is read from the OpenAPI document, the one place they are written. A
/// snake_case spelling of a parameter (the seeds' `class_id`) is answered with the camelCase one.
/// The agents' endpoints (InfluxDB, Prometheus) ignore unknown parameters, as the originals do.
struct QueryParameterCheck: RouterMiddleware {
    typealias Context = AppRequestContext

    /// One operation: its path split into segments (nil for a `{parameter}`) and its query parameters.
    struct Operation {
        let method: String
        let segments: [String?]
        let parameters: Set<String>
    }

    let operations: [Operation]

    init(document: [String: Any]) {
        let shared = (document["components"] as? [String: Any])?["parameters"] as? [String: Any] ?? [:]
        func queryNames(_ list: Any?) -> [String] {
            ((list as? [Any]) ?? []).compactMap { entry in
                var parameter = entry as? [String: Any]
                if let reference = parameter?["$ref"] as? String {
                    parameter = shared[String(reference.split(separator: "/").last ?? "")] as? [String: Any]
                }
                return parameter?["in"] as? String == "query" ? parameter?["name"] as? String : nil
            }
        }
        var operations: [Operation] = []
        for (path, item) in (document["paths"] as? [String: [String: Any]]) ?? [:] where Self.isChecked(path) {
            let segments = path.split(separator: "/").map { $0.hasPrefix("{") ? nil : String($0) }
            for (method, operation) in item {
                guard let operation = operation as? [String: Any] else { continue }
                let names = queryNames(item["parameters"]) + queryNames(operation["parameters"])
                operations.append(Operation(method: method.uppercased(), segments: segments, parameters: Set(names)))
            }
        }
        self.operations = operations
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let query = request.uri.queryParameters
        let path = request.uri.path
        // A CORS preflight carries the real request's URL: that request is checked when it comes.
        guard !query.isEmpty, request.method != .options, Self.isChecked(path), let operation = operation(method: request.method.rawValue, path: path)
        else {
            return try await next(request, context)
        }
        for (name, _) in query where !operation.parameters.contains(String(name)) {
            throw Self.unknown(String(name), known: operation.parameters)
        }
        return try await next(request, context)
    }

    /// Pulseboard's own API; the agents' endpoints are left as lenient as the originals.
    static func isChecked(_ path: String) -> Bool {
        path.hasPrefix("/api/v1/") || path.hasPrefix("/auth/")
    }

    /// The documented operation a request is for: among the paths that match, the one with the
    /// most literal segments (`/classes/mine` before `/classes/{id}`).
    func operation(method: String, path: String) -> Operation? {
        let segments = path.split(separator: "/")
        return operations.filter { operation in
            operation.method == method && operation.segments.count == segments.count
                && zip(operation.segments, segments).allSatisfy { literal, segment in literal == nil || literal! == segment }
        }.max { $0.segments.compactMap { $0 }.count < $1.segments.compactMap { $0 }.count }
    }

    static func unknown(_ name: String, known: Set<String>) -> APIError {
        let camel = name.split(separator: "_").enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
        let hint =
            known.contains(camel) && camel != name
            ? " Did you mean '\(camel)'?"
            : known.isEmpty ? " This operation takes none." : " It takes: \(known.sorted().joined(separator: ", "))."
        return APIError.badRequest("Unknown query parameter '\(name)'.\(hint)", code: "unknown_parameter", details: ["field": .string(name)])
    }
}
