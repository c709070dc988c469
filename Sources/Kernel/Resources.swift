import Foundation

/// Files a target ships in its `Resources` folder (templates, static files, the OpenAPI
/// document). A missing one is a startup error, never a blank page.
package enum Resources {
    package static func url(_ name: String, in bundle: Bundle) throws -> URL {
        let url = URL(fileURLWithPath: name)
        let base = url.deletingPathExtension().lastPathComponent
        let ext = url.pathExtension.isEmpty ? nil : url.pathExtension
        guard let found = bundle.url(forResource: base, withExtension: ext, subdirectory: "Resources") else {
            throw ConfigurationError("The resource \(name) is missing from the build.")
        }
        return found
    }
}
