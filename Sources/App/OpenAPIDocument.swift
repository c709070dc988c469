import Foundation
import PulseboardKernel
import Yams

/// The OpenAPI 3.1 document, written in YAML for people (Sources/App/Resources/openapi.yaml) and served as JSON.
package enum OpenAPIDocument {
    static func load() throws -> [UInt8] {
        let object = try Yams.load(yaml: String(contentsOf: try Resources.url("openapi.yaml", in: .module), encoding: .utf8)) ?? [:]
        return [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
