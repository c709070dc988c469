import CompressNIO
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

extension Request {
    /// A body that may come gzipped (`Content-Encoding: gzip`, as Telegraf sends by default):
    /// at most `limit` bytes as sent and, once decompressed, at most `limit` bytes again, so a
    /// small body that inflates to gigabytes is a 413 after `limit` bytes, not a full memory.
    package func readDecompressedBody(upTo limit: Int) async throws -> Data {
        let sent = try await readBody(upTo: limit)
        let encoding = headers[.contentEncoding]?.lowercased().trimmingCharacters(in: .whitespaces)
        switch encoding {
        case nil, "", "identity": return sent
        case "gzip":
            var buffer = ByteBuffer(data: sent)
            do {
                return Data(buffer: try buffer.decompress(with: .gzip(), maxSize: limit))
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw APIError.tooLarge("The body is larger than \(limit) bytes once decompressed.")
            } catch {
                throw APIError.badRequest("The body is not valid gzip.", code: "malformed")
            }
        default:
            throw APIError(
                .unsupportedMediaType, code: "unsupported_encoding", message: "Content-Encoding \(encoding!) is not supported; send gzip or no encoding.")
        }
    }
}
