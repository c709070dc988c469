import Foundation
import HTTPTypes
import Hummingbird
import PulseboardDatabase
import PulseboardKernel

/// Every error answer has one shape: `{"error": {"code": "...", "message": "...", ...details}}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public enum Detail: Encodable, Sendable, Equatable {
        case string(String)
        case int(Int)

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .int(let value): try container.encode(value)
            }
        }
    }

    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public var details: [String: Detail] = [:]
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: [String: Detail] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body: [String: Detail] = details
        body["code"] = .string(code)
        body["message"] = .string(message)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        let data = try JSONEncoder.sortedKeys.encode(["error": body])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    package static func badRequest(_ message: String, code: String = "bad_request", details: [String: Detail] = [:]) -> APIError {
        APIError(.badRequest, code: code, message: message, details: details)
    }

    package static func unprocessable(_ message: String, code: String = "invalid", details: [String: Detail] = [:]) -> APIError {
        APIError(.unprocessableContent, code: code, message: message, details: details)
    }

    package static func unauthorized(_ message: String = "Authentication required.") -> APIError {
        var error = APIError(.unauthorized, code: "unauthenticated", message: message)
        error.headers[.wwwAuthenticate] = "Bearer"
        return error
    }

    package static func forbidden(_ message: String = "Your role does not allow this.") -> APIError {
        APIError(.forbidden, code: "forbidden", message: message)
    }

    package static func notFound(_ message: String) -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }

    package static func conflict(_ message: String) -> APIError {
        APIError(.conflict, code: "conflict", message: message)
    }

    package static func tooLarge(_ message: String) -> APIError {
        APIError(.contentTooLarge, code: "too_large", message: message)
    }

    package static func tooManyRequests(retryAfter seconds: Int, _ message: String) -> APIError {
        var error = APIError(.tooManyRequests, code: "rate_limited", message: message, details: ["retryAfter": .int(seconds)])
        error.headers[.retryAfter] = String(seconds)
        return error
    }

    package static func unavailable(retryAfter seconds: Int, _ message: String) -> APIError {
        var error = APIError(.serviceUnavailable, code: "unavailable", message: message, details: ["retryAfter": .int(seconds)])
        error.headers[.retryAfter] = String(seconds)
        return error
    }
}

/// Turns every error that reaches the top of the router into the JSON error shape, so that
/// Hummingbird's own errors (no route, body too large) and decoding failures look like ours.
package struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let code =
                switch error.status {
                case .notFound: "not_found"
                case .contentTooLarge: "too_large"
                case .methodNotAllowed: "method_not_allowed"
                case .unauthorized: "unauthenticated"
                default: "http_\(error.status.code)"
                }
            var apiError = APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase)
            apiError.headers = error.headers
            return try apiError.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            // Other library errors with a status, such as NIO's "too many bytes" (413).
            let code = error.status == .contentTooLarge ? "too_large" : "http_\(error.status.code)"
            return try APIError(error.status, code: code, message: error.status.reasonPhrase).response(from: request, context: context)
        } catch let error as DecodingError {
            return try APIError.badRequest(DecodingProblem(error).message, code: "malformed").response(from: request, context: context)
        } catch let error as StoreError {
            switch error {
            case .conflict(let message):
                return try APIError.conflict(message).response(from: request, context: context)
            case .unavailable:
                return try APIError.unavailable(retryAfter: 2, "The database is unavailable.").response(from: request, context: context)
            }
        } catch {
            context.logger.error("Unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return try APIError(.internalServerError, code: "internal", message: "Internal server error.")
                .response(from: request, context: context)
        }
    }
}

/// A readable description of a JSON decoding failure, with where it happened.
package struct DecodingProblem {
    /// Position in the top-level array, when the failure is inside one.
    var index: Int?
    var field: String?
    package var message: String

    package init(_ error: DecodingError) {
        let path: [any CodingKey]
        let description: String
        switch error {
        case .typeMismatch(let type, let context):
            path = context.codingPath
            description = "expected \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            path = context.codingPath
            description = "expected \(Self.name(of: type)), found null"
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
            description = "is required"
        case .dataCorrupted(let context):
            path = context.codingPath
            description = path.isEmpty ? "the body is not valid JSON" : context.debugDescription
        @unknown default:
            path = []
            description = "could not be decoded"
        }
        index = path.first?.intValue
        let names = (index == nil ? path : Array(path.dropFirst())).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        field = names.isEmpty ? nil : names.joined(separator: ".")
        switch (index, field) {
        case (let index?, let field?): message = "Item \(index): field '\(field)' \(description)."
        case (nil, let field?): message = "Field '\(field)' \(description)."
        case (let index?, nil): message = "Item \(index): \(description)."
        case (nil, nil): message = "Malformed JSON: \(description)."
        }
    }

    package var details: [String: APIError.Detail] {
        var details: [String: APIError.Detail] = [:]
        if let index { details["index"] = .int(index) }
        if let field { details["field"] = .string(field) }
        return details
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Double.Type, is Float.Type: "a number"
        case is Int.Type, is Int64.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is [String: String].Type: "an object of strings"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}
