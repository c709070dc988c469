import Foundation
import Hummingbird
import NIOCore
import PulseboardKernel

/// Every route reads its body through `readBody(upTo:)`, with the route's own limit: a declared
/// `Content-Length` over the limit is refused before a byte is read, and a chunked body is read
/// only up to the limit. Either way the answer is a 413, never a 500.
extension Request {
    /// The largest body of a route that states no limit of its own (JSON calls, forms, logins).
    package static let standardBodyLimit = 64 * 1024

    package func readBody(upTo limit: Int) async throws -> Data {
        let tooLarge = APIError.tooLarge("The body is larger than \(limit) bytes.")
        if let length = headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge }
        do {
            return Data(buffer: try await body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
    }
}

/// The JSON decoder of `request.decode(as:context:)`: reads the body as above, with the context's
/// `maxUploadSize`, then decodes with the shared settings.
public struct BoundedJSONRequestDecoder: RequestDecoder {
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        try JSONDecoder.pulseboard.decode(T.self, from: try await request.readBody(upTo: context.maxUploadSize))
    }
}
