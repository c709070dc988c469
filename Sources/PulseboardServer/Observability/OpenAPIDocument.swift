import Foundation
import Yams

/// The OpenAPI 3.1 document, written in YAML for people (Resources/openapi.yaml) and served as JSON.
enum OpenAPIDocument {
    static func load() throws -> [UInt8] {
        let object = try Yams.load(yaml: String(contentsOf: try Resources.url("openapi.yaml"), encoding: .utf8)) ?? [:]
        return [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
