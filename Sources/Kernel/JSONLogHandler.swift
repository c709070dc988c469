import Foundation
import Logging
import Synchronization

/// Writes one JSON object per line to standard output: `{"ts","level","label","message",…metadata}`.
public struct JSONLogHandler: LogHandler {
    private static let output = Mutex<FileHandle>(FileHandle.standardOutput)
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        guard var data = try? Self.render(label: label, level: event.level, message: event.message.description, metadata: merged) else { return }
        data.append(0x0A)
        Self.output.withLock { $0.write(data) }
    }

    static func render(label: String, level: Logger.Level, message: String, metadata: Logger.Metadata) throws -> Data {
        var object: [String: Any] = [
            "ts": Timestamp.format(Date()),
            "level": level.rawValue,
            "label": label,
            "message": message,
        ]
        for (key, value) in metadata {
            object[key] = json(value)
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    private static func json(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let value): value.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }
}
