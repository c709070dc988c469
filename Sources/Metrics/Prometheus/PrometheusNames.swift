import PulseboardPromQL

/// Pulseboard's series as Prometheus sees them. A name keeps what Prometheus allows
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`) and every other byte becomes `_`: `host.cpu` is `host_cpu`,
/// `sensor-1/temp` is `sensor_1_temp`, a leading digit gets a `_` before it. Tag keys map the
/// same way without the colon. When two stored names map to the same labels (`host.cpu` and
/// `host_cpu`, both without tags), each whose name changed carries its own as the label
/// `pulseboard_name`, so that none hides another.
package enum PrometheusNames {
    package static let originalNameLabel = "pulseboard_name"

    package static func metricName(_ name: String) -> String {
        sanitized(name, allowingColon: true)
    }

    package static func labelName(_ key: String) -> String {
        sanitized(key, allowingColon: false)
    }

    private static func sanitized(_ text: String, allowingColon: Bool) -> String {
        var bytes = text.utf8.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                byte
            case UInt8(ascii: ":") where allowingColon: byte
            default: UInt8(ascii: "_")
            }
        }
        if let first = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) { bytes.insert(UInt8(ascii: "_"), at: 0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The labels of each series (by id), collisions told apart.
    package static func labels(of series: [(id: Int64, key: SeriesKey)]) -> [Int64: Labels] {
        var mapped = series.map { one in
            (
                id: one.id, original: one.key.name,
                labels: Labels([Label(Labels.metricName, metricName(one.key.name))] + one.key.tags.map { Label(labelName($0.key), $0.value) })
            )
        }
        let counts = Dictionary(mapped.map { ($0.labels, 1) }, uniquingKeysWith: +)
        for index in mapped.indices where counts[mapped[index].labels]! > 1 && mapped[index].labels[Labels.metricName] != mapped[index].original {
            mapped[index].labels = mapped[index].labels.setting(originalNameLabel, to: mapped[index].original)
        }
        return Dictionary(uniqueKeysWithValues: mapped.map { ($0.id, $0.labels) })
    }
}
