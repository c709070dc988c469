import Foundation
import PulseboardKernel
import Yams

/// The OpenAPI 3.1 document, written in YAML for people (Sources/App/Resources/openapi.yaml) and served as JSON.
package enum OpenAPIDocument {
    /// The document as parsed YAML: dictionaries, arrays, strings and numbers.
    static func object() throws -> [String: Any] {
        try Yams.load(yaml: String(contentsOf: try Resources.url("openapi.yaml", in: .module), encoding: .utf8)) as? [String: Any] ?? [:]
    }

    /// The document as served: JSON.
    static func json(_ object: [String: Any]) throws -> [UInt8] {
        [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
