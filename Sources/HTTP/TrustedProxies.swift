import Foundation
import HTTPTypes
import Hummingbird

/// The proxies (`--trusted-proxies`: addresses or CIDR ranges) whose `X-Forwarded-For`,
/// `X-Real-IP` and `X-Forwarded-Proto` are believed. From anyone else those headers are ignored,
/// so a client cannot choose its own address (and so its login-limit bucket).
package struct TrustedProxies: Sendable {
    /// An address range: the first `prefixLength` bits of `bytes` (4 bytes for IPv4, 16 for IPv6).
    struct Range: Sendable, Equatable {
        let bytes: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            for bit in 0..<prefixLength where (address[bit / 8] ^ bytes[bit / 8]) & (0x80 >> UInt8(bit % 8)) != 0 {
                return false
            }
            return true
        }
    }

    let ranges: [Range]

    package static let none = TrustedProxies(ranges: [])

    init(ranges: [Range]) {
        self.ranges = ranges
    }

    /// Parses `10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`; an entry that is neither is an error.
    package init(parsing entries: [String]) throws(InvalidEntry) {
        ranges = try entries.map { entry throws(InvalidEntry) in
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = parts.first.flatMap(Self.bytes) else { throw InvalidEntry(entry: entry) }
            let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let length, (0...bytes.count * 8).contains(length) else { throw InvalidEntry(entry: entry) }
            return Range(bytes: bytes, prefixLength: length)
        }
    }

    package struct InvalidEntry: Error, CustomStringConvertible {
        let entry: String
        package var description: String { "'\(entry)' is not an IP address or CIDR range (like 10.0.0.0/8 or ::1)." }
    }

    package var isEmpty: Bool { ranges.isEmpty }

    package func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(address) else { return false }
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let mapped = bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff ? Array(bytes[12...]) : nil
        return ranges.contains { $0.contains(bytes) || mapped.map($0.contains) == true }
    }

    /// The client behind the proxies: the connection's peer when it is not a trusted proxy; else,
    /// walking `X-Forwarded-For` from the right (each proxy appends the address it saw), the
    /// first hop that is not a trusted proxy. An unreadable hop stops the walk at the last one
    /// believed. `X-Real-IP` stands in when there is no `X-Forwarded-For`.
    package func client(peer: String, forwardedFor: String?, realIP: String?) -> String {
        guard contains(peer), let hops = forwardedFor ?? realIP else { return peer }
        var client = peer
        for hop in hops.split(separator: ",").reversed() {
            guard let address = Self.address(hop) else { break }
            client = address
            if !contains(address) { break }
        }
        return client
    }

    /// A hop as proxies write it: an address, maybe with a port (`1.2.3.4:80`, `[::1]:80`).
    static func address(_ hop: Substring) -> String? {
        var text = hop.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("["), let end = text.firstIndex(of: "]") {
            text = String(text[text.index(after: text.startIndex)..<end])
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = String(text[..<colon])
        }
        return bytes(text) == nil ? nil : text
    }

    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// Puts the client a trusted proxy names into the context (`clientAddress`, `forwardedProto`).
/// Runs before everything that logs or limits by address.
package struct ForwardedClientMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext
    let proxies: TrustedProxies

    package init(proxies: TrustedProxies) {
        self.proxies = proxies
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard proxies.contains(context.clientAddress) else { return try await next(request, context) }
        var context = context
        let forwardedFor = request.headers[values: Self.forwardedFor]
        context.clientAddress = proxies.client(
            peer: context.clientAddress, forwardedFor: forwardedFor.isEmpty ? nil : forwardedFor.joined(separator: ","),
            realIP: request.headers[Self.realIP])
        if let scheme = request.headers[Self.forwardedProto]?.lowercased(), scheme == "http" || scheme == "https" {
            context.forwardedProto = scheme
        }
        return try await next(request, context)
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let realIP = HTTPField.Name("X-Real-IP")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}
