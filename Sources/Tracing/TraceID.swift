/// The id that joins a request's row in the request log to the steps of the work it started
/// (seed 003's `trace_id`). It is also the request id in the server's log lines, in the audit log
/// and in the `X-Request-Id` response header.
package enum TraceID {
    /// A new id: 32 lowercase hex digits, the shape of a W3C trace id.
    package static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return hex(generator.next()) + hex(generator.next())
    }

    /// The id a request brings, when well-formed: the trace id of a W3C `traceparent`
    /// (`00-<32 hex>-<16 hex>-<2 hex>`), else an `X-Request-Id` of 1 to 128 letters, digits and
    /// `-_.:`; a malformed one is ignored (a new id is made) rather than stored as sent.
    package static func incoming(traceparent: String?, requestID: String?) -> String? {
        if let traceparent {
            let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
            if parts.count == 4, parts[1].utf8.count == 32, parts[1].allSatisfy(\.isHexDigit), parts[1].contains(where: { $0 != "0" }) {
                return parts[1].lowercased()
            }
        }
        if let requestID, (1...128).contains(requestID.utf8.count),
            requestID.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.:".unicodeScalars.contains($0)) }
            )
        {
            return requestID
        }
        return nil
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
