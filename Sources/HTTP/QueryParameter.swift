import Foundation
import PulseboardKernel

/// Query parameters read with the same checks everywhere: a value that does not parse or is out
/// of range is a 400 that names the parameter; a missing one is nil.
package enum QueryParameter {
    /// An ISO-8601 time, as milliseconds since the epoch.
    package static func time(_ text: String?, field: String) throws -> Int64? {
        guard let text else { return nil }
        guard let date = Timestamp.parse(text) else {
            throw APIError.badRequest("'\(field)' is not an ISO-8601 time.", details: ["field": .string(field)])
        }
        return date.millisecondsSince1970
    }

    /// A whole number within `range`.
    package static func integer(_ text: String?, field: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError.badRequest("'\(field)' is a whole number from \(range.lowerBound) to \(range.upperBound).", details: ["field": .string(field)])
        }
        return value
    }
}
