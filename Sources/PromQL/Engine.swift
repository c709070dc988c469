import Foundation

/// The samples of one stored series, sorted by time, one per timestamp.
public struct StoredSeries: Sendable {
    public var labels: Labels
    public var timestamps: [Int64]
    public var values: [Double]

    public init(labels: Labels, timestamps: [Int64], values: [Double]) {
        self.labels = labels
        self.timestamps = timestamps
        self.values = values
    }
}

/// Which samples of a series a query needs: those in `windows` (ascending by start), or with
/// `lastOnly` just the latest sample of each window (what an instant vector selector reads at
/// each step), so that a store can skip the rest.
public struct SampleRequest: Hashable, Sendable {
    public var windows: [ClosedRange<Int64>]
    public var lastOnly: Bool

    public init(windows: [ClosedRange<Int64>], lastOnly: Bool) {
        self.windows = windows
        self.lastOnly = lastOnly
    }

    /// From the first window's start to the last one's end.
    public var span: ClosedRange<Int64> { windows.first!.lowerBound...windows.map(\.upperBound).max()! }

    /// The samples of `timestamps` (sorted) that the request needs, as ascending runs of
    /// indices. Found by binary search per window, so that a week of samples costs the steps,
    /// not the samples.
    public func needed(_ timestamps: [Int64]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var searched = 0  // windows ascend, and so does where each one ends
        for window in windows {
            let after = Self.firstIndex(in: timestamps, from: searched) { $0 > window.upperBound }
            let first =
                lastOnly
                ? (after > 0 && timestamps[after - 1] >= window.lowerBound ? after - 1 : after)
                : Self.firstIndex(in: timestamps, from: searched) { $0 >= window.lowerBound }
            if first < after {
                if let last = runs.last, last.upperBound >= first {
                    runs[runs.count - 1] = last.lowerBound..<Swift.max(last.upperBound, after)
                } else {
                    runs.append(first..<after)
                }
            }
            searched = after
        }
        return runs
    }

    /// The first index from `start` whose timestamp satisfies `isPast` (false, then true, along
    /// the sorted timestamps), or the count. The answer is mostly a few samples on (the next
    /// step's), so the search gallops from `start` before it halves.
    private static func firstIndex(in timestamps: [Int64], from start: Int, where isPast: (Int64) -> Bool) -> Int {
        var low = start  // no index before it is past
        var bound = 1
        while low + bound - 1 < timestamps.count, !isPast(timestamps[low + bound - 1]) {
            low += bound
            bound *= 2
        }
        var high = Swift.min(low + bound - 1, timestamps.count)  // past, or the count
        while low < high {
            let middle = (low + high) / 2
            if isPast(timestamps[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// The samples of a sorted series that the request needs.
    public func kept(timestamps: [Int64], values: [Double]) -> (timestamps: [Int64], values: [Double]) {
        let runs = needed(timestamps)
        if runs == [0..<timestamps.count] { return (timestamps, values) }
        return (Self.gather(runs, of: timestamps), Self.gather(runs, of: values))
    }

    /// The elements of `runs`, through one buffer pointer (a slice per run would retain the
    /// array each time, and an instant selector's runs are one sample each).
    private static func gather<Element>(_ runs: [Range<Int>], of elements: [Element]) -> [Element] {
        var gathered: [Element] = []
        gathered.reserveCapacity(runs.reduce(0) { $0 + $1.count })
        elements.withUnsafeBufferPointer { source in
            for run in runs { gathered.append(contentsOf: UnsafeBufferPointer(rebasing: source[run])) }
        }
        return gathered
    }
}

/// Where a query's samples come from.
public protocol SeriesStore: Sendable {
    /// Hands `body` each series whose labels satisfy every matcher, with the samples the request
    /// needs (sorted, one per timestamp; a series without any is left out), one series at a
    /// time. Throws `PromQLError.execution` when one series would hold more than `sampleLimit`.
    func forEachSeries(
        matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int, _ body: (StoredSeries) throws -> Void
    ) async throws
}

/// What a query answers, in the four shapes of Prometheus's API.
public enum QueryResult: Sendable {
    case scalar(timestampMs: Int64, value: Double)
    case string(timestampMs: Int64, value: String)
    case vector([(labels: Labels, timestampMs: Int64, value: Double)])
    case matrix([(labels: Labels, samples: [(timestampMs: Int64, value: Double)])])
}

/// Evaluates PromQL as Prometheus 2.42 does: an instant query at one time, a range query at every
/// step from start to end. An instant vector selector takes each series' latest sample in
/// `[t - lookback, t]` (5 minutes, Prometheus's staleness rule, since Pulseboard stores no stale
/// markers); a range selector `x[r]` the samples in `[t - r, t]`; both shifted by `offset`.
/// The samples are read first (each selector's whole span at once), then the expression is
/// evaluated in memory; a query that would read more than `sampleLimit` samples is refused.
/// Only the samples the steps use are read (`SampleRequest`), so a selector over a week at a
/// ten-minute step reads a sample a step, not every sample of the week.
public struct QueryEngine: Sendable {
    public var lookbackMs: Int64 = 300_000
    public var sampleLimit = 20_000_000
    /// Steps of a range query at most, as Prometheus limits them.
    public static let maxSteps: Int64 = 11_000

    public init() {}

    public func instant(_ query: String, atMs time: Int64, store: some SeriesStore) async throws -> QueryResult {
        let expression = try Parser.parse(query)
        let steps = Steps(startMs: time, stepMs: 1, count: 1)
        let data = try await load(expression, steps: steps, store: store)
        if case .matrixSelector(let selector, let range) = expression {
            let request = Self.request(selector, rangeMs: range, steps: steps, lookbackMs: lookbackMs)
            return .matrix(
                (data.series[SelectorKey(selector.matchers, request)] ?? []).map { stored in
                    (stored.labels, zip(stored.timestamps, stored.values).map { (timestampMs: $0.0, value: $0.1) })
                })
        }
        let value = try Evaluator(steps: steps, data: data, lookbackMs: lookbackMs).evaluate(expression)
        switch value {
        case .scalar(let values): return .scalar(timestampMs: time, value: values[0])
        case .string(let text): return .string(timestampMs: time, value: text)
        case .vector(let vector): return .vector(vector.series.compactMap { series in series.values[0].map { (series.labels, time, $0) } })
        }
    }

    public func range(_ query: String, startMs: Int64, endMs: Int64, stepMs: Int64, store: some SeriesStore) async throws -> QueryResult {
        let expression = try Parser.parse(query)
        guard [.scalar, .vector].contains(expression.type) else {
            throw PromQLError.badData("invalid expression type \"\(expression.type.documented)\" for range query, must be Scalar or instant Vector")
        }
        let steps = Steps(startMs: startMs, stepMs: stepMs, count: Int((endMs - startMs) / stepMs) + 1)
        let value = try Evaluator(steps: steps, data: try await load(expression, steps: steps, store: store), lookbackMs: lookbackMs).evaluate(expression)
        func samples(_ values: [Double?]) -> [(timestampMs: Int64, value: Double)] {
            values.enumerated().compactMap { index, value in value.map { (steps.time(index), $0) } }
        }
        switch value {
        case .scalar(let values): return .matrix([(Labels.empty, samples(values))])
        case .string: throw PromQLError.badData("invalid expression type \"string\" for range query, must be Scalar or instant Vector")
        case .vector(let vector):
            return .matrix(vector.series.map { ($0.labels, samples($0.values)) }.filter { !$0.1.isEmpty }.sorted { $0.0 < $1.0 })
        }
    }

    /// Reads what the steps need. An instant selector's samples (one a step) are kept; a range
    /// selector's are read one series at a time and reduced at once by the function they are the
    /// argument of, so that only one series' window samples are in memory (`sampleLimit` bounds
    /// each series' samples there, and the instant selectors' together).
    private func load(_ expression: Expression, steps: Steps, store: some SeriesStore) async throws -> LoadedData {
        var data = LoadedData()
        var loaded = 0
        for (selector, range) in Self.selectors(in: expression) where range == nil || Self.isTopLevelMatrix(expression) {
            let key = SelectorKey(selector.matchers, Self.request(selector, rangeMs: range, steps: steps, lookbackMs: lookbackMs))
            guard data.series[key] == nil else { continue }
            var series: [StoredSeries] = []
            try await store.forEachSeries(matching: selector.matchers, request: key.request, sampleLimit: sampleLimit - loaded) { stored in
                loaded += stored.timestamps.count
                guard loaded <= sampleLimit else { throw PromQLError.execution(Self.tooManySamples) }
                series.append(stored)
            }
            data.series[key] = series
        }
        for (function, arguments) in Self.rangeCalls(in: expression) {
            guard let index = arguments.firstIndex(where: { $0.type == .matrix }), case .matrixSelector(let selector, let range) = arguments[index] else {
                throw PromQLError.badData("subqueries are not supported by Pulseboard")
            }
            // A scalar before the range (quantile_over_time's φ), evaluated over what is loaded.
            let parameter: [Double]
            if index > 0, case .scalar(let values) = try Evaluator(steps: steps, data: data, lookbackMs: lookbackMs).evaluate(arguments[0]) {
                parameter = values
            } else {
                parameter = Array(repeating: 0, count: steps.count)
            }
            let request = Self.request(selector, rangeMs: range, steps: steps, lookbackMs: lookbackMs)
            let key = RangeCallKey(function: function.name, selector: SelectorKey(selector.matchers, request), parameter: parameter.map(\.bitPattern))
            guard data.rangeCalls[key] == nil else { continue }
            var results: [StepVector.Series] = []
            try await store.forEachSeries(matching: selector.matchers, request: request, sampleLimit: sampleLimit) { stored in
                if let result = RangeFunction.evaluate(function, over: stored, selector: selector, rangeMs: range, steps: steps, parameter: parameter) {
                    results.append(result)
                }
            }
            data.rangeCalls[key] = results
        }
        return data
    }

    private static func isTopLevelMatrix(_ expression: Expression) -> Bool {
        if case .matrixSelector = expression { return true }
        return false
    }

    /// The calls of functions over a range selector, innermost first.
    static func rangeCalls(in expression: Expression) -> [(Function, [Expression])] {
        switch expression {
        case .number, .string, .vectorSelector, .matrixSelector: []
        case .call(let function, let arguments):
            arguments.flatMap { rangeCalls(in: $0) } + (arguments.contains { $0.type == .matrix } ? [(function, arguments)] : [])
        case .aggregate(let aggregation): (aggregation.parameter.map { rangeCalls(in: $0) } ?? []) + rangeCalls(in: aggregation.expression)
        case .binary(let operation): rangeCalls(in: operation.lhs) + rangeCalls(in: operation.rhs)
        case .negate(let inner): rangeCalls(in: inner)
        }
    }

    public static let tooManySamples = "query processing would load too many samples into memory in query execution"

    /// What a selector reads at every step: a range selector (`rangeMs`) every sample of
    /// `[t - range, t]`, an instant one the latest sample of `[t - lookback, t]`; t shifted by
    /// the offset. Overlapping windows of a range selector are read as one.
    static func request(_ selector: VectorSelector, rangeMs: Int64?, steps: Steps, lookbackMs: Int64) -> SampleRequest {
        let windows = (0..<steps.count).map { step in
            let end = steps.time(step) - selector.offsetMs
            return (end - (rangeMs ?? lookbackMs))...end
        }
        guard rangeMs != nil else { return SampleRequest(windows: windows, lastOnly: true) }
        var merged: [ClosedRange<Int64>] = []
        for window in windows {
            if let last = merged.last, window.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, window.upperBound)
            } else {
                merged.append(window)
            }
        }
        return SampleRequest(windows: merged, lastOnly: false)
    }

    /// The selectors of an expression, with the range of those that are range selectors.
    static func selectors(in expression: Expression) -> [(VectorSelector, Int64?)] {
        switch expression {
        case .number, .string: []
        case .vectorSelector(let selector): [(selector, nil)]
        case .matrixSelector(let selector, let range): [(selector, range)]
        case .call(_, let arguments): arguments.flatMap { selectors(in: $0) }
        case .aggregate(let aggregation): (aggregation.parameter.map { selectors(in: $0) } ?? []) + selectors(in: aggregation.expression)
        case .binary(let operation): selectors(in: operation.lhs) + selectors(in: operation.rhs)
        case .negate(let inner): selectors(in: inner)
        }
    }
}

/// The times a query is evaluated at.
struct Steps {
    var startMs: Int64
    var stepMs: Int64
    var count: Int

    func time(_ index: Int) -> Int64 { startMs + Int64(index) * stepMs }
    var endMs: Int64 { time(count - 1) }
}

/// A selector's samples as loaded: by its matchers and what was read.
struct SelectorKey: Hashable {
    var matchers: [LabelMatcher]
    var request: SampleRequest

    init(_ matchers: [LabelMatcher], _ request: SampleRequest) {
        self.matchers = matchers
        self.request = request
    }
}

/// A function over a range selector, with its parameter at each step (as bit patterns, so that
/// NaN is a key like any other).
struct RangeCallKey: Hashable {
    var function: String
    var selector: SelectorKey
    var parameter: [UInt64]
}

/// What a query read before it is evaluated: instant selectors' samples, and functions over
/// range selectors already applied, series by series.
struct LoadedData {
    var series: [SelectorKey: [StoredSeries]] = [:]
    var rangeCalls: [RangeCallKey: [StepVector.Series]] = [:]
}

/// An instant vector at every step: per series, its value at each step or nil.
struct StepVector {
    struct Series {
        var labels: Labels
        var values: [Double?]
    }

    var series: [Series] = []
}

/// A value during evaluation, over all steps.
enum StepValue {
    case scalar([Double])
    case vector(StepVector)
    case string(String)
}
