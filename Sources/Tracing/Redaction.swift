import Foundation
import PulseboardKernel

/// What the request log may keep of headers and bodies: never a password, token, cookie or CSRF
/// token. Headers that carry secrets keep their name with the value `[redacted]` (so a reader
/// sees that one was sent); JSON bodies lose the values of keys that name a secret, and any text
/// that looks like one of Pulseboard's tokens (`pb?_…`), a JWT, or a `token=` query parameter.
package enum Redaction {
    package static let redacted = "[redacted]"
    /// Bodies larger than this are not kept (ingest batches, uploads): reading them for the log
    /// would cost the request.
    package static let maxCapturedBodyBytes = 16 * 1024
    /// What is kept of a body after redaction, in UTF-8 bytes.
    package static let maxStoredBodyBytes = 4 * 1024

    static let secretHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-csrf-token"]
    /// The same on every response, so not worth a copy per request.
    static let constantHeaders: Set<String> = [
        "content-security-policy", "referrer-policy", "strict-transport-security", "x-content-type-options", "x-frame-options",
    ]
    static let secretKeyParts = ["password", "token", "secret", "authorization", "cookie", "csrf"]
    /// Keys that name a secret's kind, id, prefix or time, not the secret (`tokenType`, `tokenPrefix`).
    static let harmlessKeyEndings = ["type", "id", "prefix", "until", "at", "name"]

    /// The headers as a JSON object (a repeated header's values joined by ", ").
    package static func headers(_ fields: [(name: String, value: String)]) -> String {
        var object: [String: String] = [:]
        for (name, value) in fields {
            let name = name.lowercased()
            if constantHeaders.contains(name) { continue }
            let kept = secretHeaders.contains(name) ? redacted : redactedText(value)
            object[name] = object[name].map { $0 + ", " + kept } ?? kept
        }
        return (try? String(decoding: JSONEncoder.sortedKeys.encode(object), as: UTF8.self)) ?? "{}"
    }

    /// A JSON body's redacted text, capped at `maxStoredBodyBytes` (cut where a character ends,
    /// then marked); nil when the bytes are not JSON. Most bodies (points, events) hold nothing
    /// that looks like a secret, which a scan of the bytes tells; they are kept as sent, without
    /// being decoded (that cost ingest a third of its throughput on small batches).
    package static func jsonBody(_ bytes: Data) -> String? {
        let text: String
        if mayHoldSecret(bytes) {
            guard let value = try? JSONValue(parsing: bytes) else { return nil }
            text = encode(redact(value))
        } else {
            guard let first = bytes.first(where: { !" \t\r\n".utf8.contains($0) }), first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else {
                return nil
            }
            text = String(decoding: bytes, as: UTF8.self)
        }
        guard text.utf8.count > maxStoredBodyBytes else { return text }
        var cut = text.utf8.prefix(maxStoredBodyBytes)
        while !cut.isEmpty, String(cut) == nil { cut = cut.dropLast() }
        return (String(cut) ?? "") + "…[\(text.utf8.count) bytes, cut]"
    }

    /// Whether the bytes contain, in any case, a secret key part or the start of a token, a JWT
    /// or a `token=` parameter: only then is a body decoded and redacted.
    static func mayHoldSecret(_ bytes: some Collection<UInt8>) -> Bool {
        let lowered = bytes.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }
        return secretMarkers.contains { contains(lowered, $0) }
    }

    static let secretMarkers = (secretKeyParts + ["pb", "eyj"]).map { Array($0.utf8) }

    /// Whether `needle` occurs in `haystack`: a plain scan (the generic `firstRange(of:)` cost more
    /// than the request it logged).
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, needle.count <= haystack.count else { return needle.isEmpty }
        return haystack.withUnsafeBufferPointer { haystack in
            needle.withUnsafeBufferPointer { needle in
                for start in 0...(haystack.count - needle.count) where haystack[start] == first {
                    var matched = 1
                    while matched < needle.count && haystack[start + matched] == needle[matched] { matched += 1 }
                    if matched == needle.count { return true }
                }
                return false
            }
        }
    }

    static func redact(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            .object(
                object.reduce(into: [:]) { result, field in
                    let key = field.key.lowercased()
                    let secret =
                        secretKeyParts.contains(where: { contains(Array(key.utf8), Array($0.utf8)) }) && !harmlessKeyEndings.contains(where: key.hasSuffix)
                    result[field.key] = secret ? .string(redacted) : redact(field.value)
                })
        case .array(let array): .array(array.map(redact))
        case .string(let text): .string(redactedText(text))
        default: value
        }
    }

    static let textMarkers = ["pb", "eyJ", "token="].map { Array($0.utf8) }

    /// Text with anything shaped like a secret replaced.
    package static func redactedText(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard textMarkers.contains(where: { contains(bytes, $0) }) else { return text }
        return
            text
            .replacing(#/pb[a-z]_[A-Za-z0-9_\-]{8,}/#, with: redacted)
            .replacing(#/eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*/#, with: redacted)
            .replacing(#/([?&]token=)[^&#\s"]*/#) { $0.output.1 + redacted }
    }

    private static func encode(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.sortedKeys.encode(value), as: UTF8.self)) ?? "null"
    }
}
