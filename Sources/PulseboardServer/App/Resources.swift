import Foundation

/// Files shipped with the server (Sources/PulseboardServer/Resources): templates, static files,
/// the OpenAPI document.
enum Resources {
    static func url(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: name)
        let base = url.deletingPathExtension().lastPathComponent
        let ext = url.pathExtension.isEmpty ? nil : url.pathExtension
        guard let found = Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Resources") else {
            throw ConfigurationError("The resource \(name) is missing from the build.")
        }
        return found
    }
}
