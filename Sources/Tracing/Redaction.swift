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
        var object: [String: JSONValue] = [:]
        for (name, value) in fields {
            let name = name.lowercased()
            if constantHeaders.contains(name) { continue }
            let kept = secretHeaders.contains(name) ? redacted : redactedText(value)
            if case .string(let earlier) = object[name] {
                object[name] = .string(earlier + ", " + kept)
            } else {
                object[name] = .string(kept)
            }
        }
        return encode(.object(object))
    }

    /// A JSON body's redacted text, capped at `maxStoredBodyBytes` (cut where a character ends,
    /// then marked); nil when the bytes are not JSON.
    package static func jsonBody(_ bytes: Data) -> String? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: bytes) else { return nil }
        let text = encode(redact(value))
        guard text.utf8.count > maxStoredBodyBytes else { return text }
        var cut = text.utf8.prefix(maxStoredBodyBytes)
        while !cut.isEmpty, String(cut) == nil { cut = cut.dropLast() }
        return (String(cut) ?? "") + "…[\(text.utf8.count) bytes, cut]"
    }

    static func redact(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            .object(
                object.reduce(into: [:]) { result, field in
                    let key = field.key.lowercased()
                    let secret = secretKeyParts.contains(where: key.contains) && !harmlessKeyEndings.contains(where: key.hasSuffix)
                    result[field.key] = secret ? .string(redacted) : redact(field.value)
                })
        case .array(let array): .array(array.map(redact))
        case .string(let text): .string(redactedText(text))
        default: value
        }
    }

    /// Text with anything shaped like a secret replaced.
    package static func redactedText(_ text: String) -> String {
        guard text.contains("pb") || text.contains("eyJ") || text.contains("token=") else { return text }
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
