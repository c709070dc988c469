import Foundation
import Testing

@testable import PulseboardPromQL

/// Series in memory, for the engine alone.
struct MemorySeriesStore: SeriesStore {
    var all: [StoredSeries]

    func forEachSeries(
        matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int, _ body: (StoredSeries) throws -> Void
    ) async throws {
        for series in all where matchers.allSatisfy({ $0.matches(series.labels) }) {
            let kept = request.kept(timestamps: series.timestamps, values: series.values)
            guard kept.timestamps.count <= sampleLimit else { throw PromQLError.execution(QueryEngine.tooManySamples) }
            if !kept.timestamps.isEmpty {
                try body(StoredSeries(labels: series.labels, timestamps: kept.timestamps, values: kept.values))
            }
        }
    }
}

/// The parser's precedence and checks, and the engine on small known series, against values
/// worked out by hand from Prometheus 2.42's rules. The differential test in `.ci/run`
/// (scripts/promql_check.py) compares hundreds of queries with Prometheus itself.
@Suite("PromQL") struct PromQLTests {
    /// A counter every 15 s from t = 0 (0, 10, 20, … with a reset to 5 at 150 s), and a gauge.
    static let store: MemorySeriesStore = {
        let every15s: [Int64] = (0..<20).map { Int64($0) * 15_000 }
        let resetting: [Double] = (0..<20).map { (index: Int) -> Double in
            index < 10 ? Double(index * 10) : Double(5 + (index - 10) * 10)
        }
        let steady: [Double] = (0..<20).map { Double($0 * 2) }
        return MemorySeriesStore(all: [
            StoredSeries(labels: Labels(["__name__": "requests_total", "job": "api", "instance": "a"]), timestamps: every15s, values: resetting),
            StoredSeries(labels: Labels(["__name__": "requests_total", "job": "api", "instance": "b"]), timestamps: every15s, values: steady),
            StoredSeries(labels: Labels(["__name__": "temperature", "room": "lab"]), timestamps: [0, 60_000, 120_000], values: [20.5, 21, 19.5]),
            StoredSeries(labels: Labels(["__name__": "errors_total", "job": "api", "instance": "a"]), timestamps: [0, 30_000], values: [1, 2]),
        ])
    }()

    static func instant(_ query: String, at seconds: Int64) async throws -> QueryResult {
        try await QueryEngine().instant(query, atMs: seconds * 1000, store: store)
    }

    static func vector(_ query: String, at seconds: Int64) async throws -> [String: Double] {
        guard case .vector(let samples) = try await instant(query, at: seconds) else {
            Issue.record("not a vector: \(query)")
            return [:]
        }
        return Dictionary(uniqueKeysWithValues: samples.map { ($0.labels.description, $0.value) })
    }

    /// The query's vector has these series with these values, to within rounding.
    static func expect(_ query: String, at seconds: Int64, _ expected: [String: Double], sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let found = try await vector(query, at: seconds)
        #expect(Set(found.keys) == Set(expected.keys), "\(query): \(found)", sourceLocation: sourceLocation)
        for (labels, value) in expected {
            let got = found[labels] ?? .nan
            #expect(Swift.abs(got - value) <= 1e-12 * Swift.max(1, Swift.abs(value)), "\(query) \(labels): \(got) != \(value)", sourceLocation: sourceLocation)
        }
    }

    @Test func precedenceAndAssociativityAreThoseOfPrometheus() async throws {
        let cases: [(String, Double)] = [
            ("1 + 2 * 3", 7), ("2 ^ 3 ^ 2", 512), ("-2 ^ 2", -4), ("(1 + 2) * 3", 9), ("10 - 4 - 3", 3), ("2 * 3 % 4", 2),
            ("1 + 2 > bool 2", 1), ("0x10 + 1e1", 26), ("-(1 + 1)", -2), ("+3", 3), ("5 % -3", 2),
        ]
        for (query, expected) in cases {
            guard case .scalar(_, let value) = try await Self.instant(query, at: 0) else {
                Issue.record("not a scalar: \(query)")
                continue
            }
            #expect(value == expected, "\(query)")
        }
        guard case .scalar(_, let value) = try await Self.instant("1 atan2 1", at: 0) else {
            Issue.record("atan2")
            return
        }
        #expect(value == .pi / 4)
    }

    @Test func parseErrorsAreBadDataThatNameTheProblem() async throws {
        let cases: [(String, String)] = [
            ("", "no expression found in input"),
            ("1 > 2", "comparisons between scalars must use BOOL modifier"),
            ("rate(requests_total)", "expected type range vector in call to function \"rate\", got instant vector"),
            ("rate(requests_total[5m], 1)", "expected 1 argument(s) in call to \"rate\", got 2"),
            ("label_replace(up, \"a\", \"b\", \"c\", \"d\")", "function \"label_replace\" is not supported by Pulseboard"),
            ("nosuch(up)", "unknown function with name \"nosuch\""),
            ("rate(up[5m:1m])", "subqueries are not supported by Pulseboard"),
            ("up @ 100", "the @ modifier is not supported by Pulseboard"),
            ("{job=\"\"}", "vector selector must contain at least one non-empty matcher"),
            ("up{__name__=\"x\"}", "metric name must not be set twice: \"up\" or \"x\""),
            ("1 and 2", "set operator \"and\" not allowed in binary scalar expression"),
            ("up + on(job) 1", "vector matching only allowed between instant vectors"),
            ("up and on(job) group_left up", "no grouping allowed for \"and\" operation"),
            ("up[5m] + 1", "binary expression must contain only scalar and instant vector types"),
            ("topk(up, up)", "expected type scalar in aggregation parameter, got instant vector"),
            ("sum(up[5m])", "expected type instant vector in aggregation expression, got range vector"),
            ("up{job=~\"(\"}", "invalid regular expression \"(\""),
            ("1 + 1m", "unexpected duration: durations are only allowed in ranges and after offset"),
        ]
        for (query, message) in cases {
            #expect(throws: PromQLError.badData(message), "\(query)") { _ = try Parser.parse(query) }
        }
    }

    @Test func selectorsTakeTheLatestSampleWithinTheLookback() async throws {
        try await Self.expect("temperature", at: 90, ["temperature{room=\"lab\"}": 21])
        // The last sample is at 120 s: seen for five minutes, then gone.
        try await Self.expect("temperature", at: 420, ["temperature{room=\"lab\"}": 19.5])
        #expect(try await Self.vector("temperature", at: 421).isEmpty)
        try await Self.expect("temperature offset 1m", at: 90, ["temperature{room=\"lab\"}": 20.5])
        try await Self.expect("{__name__=~\"temp.*\", room!=\"office\"}", at: 0, ["temperature{room=\"lab\"}": 20.5])
    }

    @Test func rateAndIncreaseExtrapolateAndFollowCounterResets() async throws {
        // Instance b grows 2 every 15 s: in [60 s, 120 s] it has five samples, 8 → 16, exactly
        // one interval on each side of the edges, so no extrapolation beyond the samples' span
        // … but the window's edges are the samples: 8 over 60 s.
        try await Self.expect("increase(requests_total{instance=\"b\"}[1m])", at: 120, ["{instance=\"b\", job=\"api\"}": 8])
        try await Self.expect("rate(requests_total{instance=\"b\"}[1m])", at: 120, ["{instance=\"b\", job=\"api\"}": 8.0 / 60])
        // Across the reset of instance a (90 → 5 at 150 s): 60, 70, 80, 90, 5, 15, 25 over 90 s.
        try await Self.expect("increase(requests_total{instance=\"a\"}[90s])", at: 180, ["{instance=\"a\", job=\"api\"}": 55])
        try await Self.expect("irate(requests_total{instance=\"a\"}[1m])", at: 150, ["{instance=\"a\", job=\"api\"}": 5.0 / 15])
        try await Self.expect("delta(temperature[2m])", at: 120, ["{room=\"lab\"}": -1])
        // Fewer than two samples: no value.
        #expect(try await Self.vector("rate(temperature[30s])", at: 60).isEmpty)
    }

    @Test func overTimeFunctionsAndAggregations() async throws {
        let lab = "{room=\"lab\"}"
        try await Self.expect("avg_over_time(temperature[2m])", at: 120, [lab: 61.0 / 3])
        try await Self.expect("max_over_time(temperature[2m])", at: 120, [lab: 21])
        try await Self.expect("count_over_time(temperature[2m])", at: 120, [lab: 3])
        try await Self.expect("quantile_over_time(0.5, temperature[2m])", at: 120, [lab: 20.5])
        try await Self.expect("last_over_time(temperature[2m])", at: 120, ["temperature\(lab)": 19.5])
        try await Self.expect("sum by (job) (requests_total)", at: 30, ["{job=\"api\"}": 24])
        try await Self.expect("count without (instance) (requests_total)", at: 30, ["{job=\"api\"}": 2])
        try await Self.expect("topk(1, requests_total)", at: 30, ["requests_total{instance=\"a\", job=\"api\"}": 20])
        try await Self.expect("quantile(0.5, requests_total)", at: 30, ["{}": 12])
    }

    /// What a store keeps of a series for the engine's requests, against the definition: every
    /// sample in a step's window (range selectors), or the latest of each window (instant
    /// selectors), on random series and steps.
    @Test func sampleRequestsKeepWhatTheStepsNeed() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var time = Int64.random(in: 0...100, using: &generator)
            let timestamps = (0..<Int.random(in: 0...300, using: &generator)).map { _ in
                time += Int64.random(in: 1...(Bool.random(using: &generator) ? 3 : 200), using: &generator)
                return time
            }
            let step = Int64.random(in: 1...120, using: &generator)
            let width = Int64.random(in: 0...300, using: &generator)
            let steps = Steps(startMs: Int64.random(in: 0...50, using: &generator), stepMs: step, count: Int.random(in: 1...40, using: &generator))
            let windows = (0..<steps.count).map { (steps.time($0) - width)...steps.time($0) }
            let lastOnly = Bool.random(using: &generator)
            let request = QueryEngine.request(VectorSelector(matchers: []), rangeMs: lastOnly ? nil : width, steps: steps, lookbackMs: width)
            let expected =
                lastOnly
                ? Set(windows.compactMap { window in timestamps.lastIndex { window.contains($0) } }).sorted()
                : timestamps.indices.filter { index in windows.contains { $0.contains(timestamps[index]) } }
            #expect(request.needed(timestamps).flatMap { Array($0) } == expected, "\(timestamps) \(windows) \(lastOnly)")
        }
    }

    /// avg_over_time divides a Kahan sum once; Prometheus takes an incremental mean. They agree
    /// to 1e-12 on values of mixed magnitudes and signs, and infinities follow Prometheus's rules.
    @Test func averageAgreesWithPrometheusIncrementalMean() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let scale = pow(10, Double.random(in: -6...12, using: &generator))
            let values = (0..<Int.random(in: 1...700, using: &generator)).map { _ in
                Double.random(in: -0.2...1, using: &generator) * scale
            }
            let fast = RangeFunction.average(values[...])
            let incremental = RangeFunction.incrementalMean(values[...])
            #expect(abs(fast - incremental) <= 1e-12 * max(abs(fast), abs(incremental)), "\(values)")
        }
        for values: [Double] in [[1, .infinity, 2], [.infinity, -.infinity], [1, .nan], [.greatestFiniteMagnitude, .greatestFiniteMagnitude]] {
            let fast = RangeFunction.average(values[...])
            let incremental = RangeFunction.incrementalMean(values[...])
            #expect(fast == incremental || (fast.isNaN && incremental.isNaN), "\(values)")
        }
        #expect(RangeFunction.average([Double.greatestFiniteMagnitude, .greatestFiniteMagnitude][...]) == .greatestFiniteMagnitude)
    }

    @Test func vectorMatchingPairsSeriesAndRefusesAmbiguity() async throws {
        #expect(
            try await Self.vector("requests_total / on(instance) requests_total", at: 30) == ["{instance=\"a\"}": 1, "{instance=\"b\"}": 1])
        try await Self.expect("requests_total > 10", at: 30, ["requests_total{instance=\"a\", job=\"api\"}": 20])
        #expect(
            try await Self.vector("requests_total > bool 10", at: 30) == ["{instance=\"a\", job=\"api\"}": 1, "{instance=\"b\", job=\"api\"}": 0])
        #expect(
            try await Self.vector("requests_total * on(job) group_left vector(2)", at: 30).isEmpty,
            "vector(2) has no job label: nothing pairs")
        await #expect(throws: PromQLError.execution("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")) {
            _ = try await Self.instant("requests_total + on(job) sum by (job) (requests_total)", at: 30)
        }
        #expect(
            try await Self.vector("requests_total + on(job) group_left sum by (job) (requests_total)", at: 30) == [
                "{instance=\"a\", job=\"api\"}": 44, "{instance=\"b\", job=\"api\"}": 28,
            ])
        await #expect(throws: PromQLError.execution("vector cannot contain metrics with the same labelset")) {
            // errors_total and requests_total of instance a differ only by their names, which rate drops.
            _ = try await Self.instant("rate({job=\"api\"}[1m])", at: 60)
        }
    }

    @Test func rangeQueriesEvaluateEveryStep() async throws {
        let result = try await QueryEngine().range("temperature * 2", startMs: 0, endMs: 600_000, stepMs: 60_000, store: Self.store)
        guard case .matrix(let series) = result else {
            Issue.record("not a matrix")
            return
        }
        #expect(series.count == 1)
        // 19.5 at 120 s stays for the five minutes of the lookback, to 420 s.
        #expect(series[0].samples.map { $0.value } == [41, 42, 39, 39, 39, 39, 39, 39])
        #expect(series[0].samples.last?.timestampMs == 420_000)
    }

    @Test func aQueryOverTheSampleLimitIsRefused() async throws {
        var engine = QueryEngine()
        engine.sampleLimit = 10
        // An instant selector reads one sample a step: within the limit.
        _ = try await engine.instant("requests_total", atMs: 300_000, store: Self.store)
        await #expect(throws: PromQLError.execution(QueryEngine.tooManySamples)) {
            _ = try await engine.instant("count_over_time(requests_total[5m])", atMs: 300_000, store: Self.store)
        }
    }

    @Test func histogramQuantileInterpolatesWithinTheBucket() {
        let buckets: [(upperBound: Double, count: Double)] = [(0.1, 10), (0.5, 30), (1, 40), (.infinity, 40)]
        #expect(bucketQuantile(0.5, buckets) == 0.1 + 0.4 * (10.0 / 20))
        #expect(Swift.abs(bucketQuantile(0.99, buckets) - 0.98) < 1e-12)
        #expect(bucketQuantile(0.5, [(1, 1)]).isNaN)
    }

    @Test func valuesAndTimestampsAreWrittenAsPrometheusWritesThem() {
        let cases: [(Double, String)] = [
            (1, "1"), (0.1, "0.1"), (-2.5, "-2.5"), (1e21, "1e+21"), (1.5e-7, "1.5e-07"), (123456789012, "123456789012"), (1e20, "100000000000000000000"),
            (0.000001, "0.000001"), (.nan, "NaN"), (.infinity, "+Inf"), (-.infinity, "-Inf"), (0, "0"), (1.0 / 3, "0.3333333333333333"),
        ]
        for (value, text) in cases { #expect(ResponseJSON.format(value) == text, "\(value)") }
        #expect(ResponseJSON.timestamp(1_435_781_451_781) == "1435781451.781")
        #expect(ResponseJSON.timestamp(1_435_781_451_050) == "1435781451.050")
        #expect(ResponseJSON.timestamp(1_435_781_451_000) == "1435781451")
    }
}
