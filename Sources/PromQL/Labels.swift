import Foundation

/// A label of a series: `__name__` holds the metric's name.
public struct Label: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The labels of a series, sorted by name, without empty values (an empty value is no label).
public struct Labels: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let metricName = "__name__"
    public private(set) var all: [Label]

    public init(_ labels: [Label]) {
        all = labels.filter { !$0.value.isEmpty }.sorted { $0.name < $1.name }
    }

    public init(_ pairs: [String: String]) {
        self.init(pairs.map { Label($0.key, $0.value) })
    }

    public static let empty = Labels([Label]())

    public subscript(name: String) -> String? {
        all.first { $0.name == name }?.value
    }

    public var droppingMetricName: Labels { removing([Labels.metricName]) }

    public func removing(_ names: some Collection<String>) -> Labels {
        var copy = self
        copy.all.removeAll { names.contains($0.name) }
        return copy
    }

    public func keeping(_ names: some Collection<String>) -> Labels {
        var copy = self
        copy.all.removeAll { !names.contains($0.name) }
        return copy
    }

    /// With `name` set to `value`, or removed when `value` is empty.
    public func setting(_ name: String, to value: String) -> Labels {
        Labels(all.filter { $0.name != name } + [Label(name, value)])
    }

    /// Sorted as Prometheus sorts series: label by label, names then values.
    public static func < (a: Labels, b: Labels) -> Bool {
        for (x, y) in zip(a.all, b.all) where x != y {
            return x.name != y.name ? x.name < y.name : x.value < y.value
        }
        return a.all.count < b.all.count
    }

    /// `{__name__="up", job="node"}` written as Prometheus writes it: `up{job="node"}`.
    public var description: String {
        let name = self[Labels.metricName] ?? ""
        let rest = all.filter { $0.name != Labels.metricName }.map { "\($0.name)=\"\($0.value)\"" }
        return name + (rest.isEmpty && !name.isEmpty ? "" : "{" + rest.joined(separator: ", ") + "}")
    }
}

/// One matcher of a selector: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`. Regular
/// expressions match whole values, as Prometheus anchors them; a missing label is the empty value.
public struct LabelMatcher: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case equal = "="
        case notEqual = "!="
        case matchesRegex = "=~"
        case notMatchesRegex = "!~"
    }

    public var name: String
    public var kind: Kind
    public var value: String
    private let regex: RegularExpression?

    public init(_ name: String, _ kind: Kind, _ value: String) throws(PromQLError) {
        self.name = name
        self.kind = kind
        self.value = value
        switch kind {
        case .equal, .notEqual: regex = nil
        case .matchesRegex, .notMatchesRegex: regex = try RegularExpression(value)
        }
    }

    public func matches(_ value: String) -> Bool {
        switch kind {
        case .equal: value == self.value
        case .notEqual: value != self.value
        case .matchesRegex: regex!.matchesWhole(value)
        case .notMatchesRegex: !regex!.matchesWhole(value)
        }
    }

    public func matches(_ labels: Labels) -> Bool {
        matches(labels[name] ?? "")
    }

    public static func == (a: LabelMatcher, b: LabelMatcher) -> Bool {
        a.name == b.name && a.kind == b.kind && a.value == b.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(kind)
        hasher.combine(value)
    }
}

/// A regular expression that matches whole strings (`^(?:…)$`), as Prometheus's label matchers do.
struct RegularExpression: Sendable {
    private let expression: NSRegularExpression

    init(_ pattern: String) throws(PromQLError) {
        do {
            expression = try NSRegularExpression(pattern: "^(?:" + pattern + ")$", options: [.dotMatchesLineSeparators])
        } catch {
            throw PromQLError.badData("invalid regular expression \"\(pattern)\"")
        }
    }

    func matchesWhole(_ text: String) -> Bool {
        expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
