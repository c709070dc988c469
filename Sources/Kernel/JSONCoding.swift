import Foundation

extension JSONEncoder {
    /// The encoder of every JSON answer: camelCase keys as declared, sorted for stable output.
    package static let sortedKeys: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        return encoder
    }()
}

extension JSONDecoder {
    /// The decoder of every JSON body: timestamps as ISO-8601 with or without milliseconds.
    package static let pulseboard: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "is not an ISO-8601 timestamp")
            }
            return date
        }
        return decoder
    }()
}
