import Foundation

/// The PromQL functions Pulseboard evaluates, with their argument types. Their arithmetic follows
/// Prometheus 2.42 (`promql/functions.go`), which the differential test compares against.
public struct Function: Sendable {
    public let name: String
    let arguments: [ValueType]
    /// How many of the last arguments may be left out.
    let optional: Int
    let returns: ValueType

    static func named(_ name: String) -> Function? { all[name] }

    static let all: [String: Function] = {
        var functions: [Function] = []
        func add(_ names: [String], _ arguments: [ValueType], optional: Int = 0, returns: ValueType = .vector) {
            functions += names.map { Function(name: $0, arguments: arguments, optional: optional, returns: returns) }
        }
        add(["rate", "irate", "increase", "delta", "idelta", "deriv"], [.matrix])
        add(RangeFunction.aggregations, [.matrix])
        add(["quantile_over_time"], [.scalar, .matrix])
        add(["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn"], [.vector])
        add(["round"], [.vector, .scalar], optional: 1)
        add(["clamp"], [.vector, .scalar, .scalar])
        add(["clamp_min", "clamp_max"], [.vector, .scalar])
        add(["time"], [], returns: .scalar)
        add(["vector"], [.scalar])
        add(["scalar"], [.vector], returns: .scalar)
        add(["histogram_quantile"], [.scalar, .vector])
        return Dictionary(uniqueKeysWithValues: functions.map { ($0.name, $0) })
    }()

    /// Prometheus's other functions: refused by name rather than called unknown.
    static let unsupported: Set<String> = [
        "absent", "absent_over_time", "changes", "count_values", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
        "holt_winters", "hour", "label_join", "label_replace", "minute", "month", "predict_linear", "resets", "sort", "sort_desc",
        "timestamp", "year", "histogram_count", "histogram_sum", "histogram_fraction", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi",
    ]

    /// Functions of one value (`abs(v)`…), nil for the others.
    var ofValue: ((Double) -> Double)? {
        switch name {
        case "abs": { Swift.abs($0) }
        case "ceil": { $0.rounded(.up) }
        case "floor": { $0.rounded(.down) }
        case "exp": { Foundation.exp($0) }
        case "sqrt": { $0.squareRoot() }
        case "ln": { Foundation.log($0) }
        case "log2": { Foundation.log2($0) }
        case "log10": { Foundation.log10($0) }
        case "sgn": { $0 > 0 ? 1 : $0 < 0 ? -1 : $0 }
        default: nil
        }
    }
}

/// A function over the samples of one series in one step's window, `[end - range, end]`.
enum RangeFunction {
    static let aggregations = [
        "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time", "stddev_over_time",
        "stdvar_over_time", "present_over_time",
    ]

    /// The function over one series at every step: its window is `[t - range, t]` (t shifted
    /// by the offset). Nil when it has no value at any step. `last_over_time` acts like an
    /// offset and keeps the metric's name; the others drop it.
    static func evaluate(_ function: Function, over stored: StoredSeries, selector: VectorSelector, rangeMs: Int64, steps: Steps, parameter: [Double])
        -> StepVector.Series?
    {
        var values = [Double?](repeating: nil, count: steps.count)
        var (low, high) = (0, 0)
        for step in 0..<steps.count {
            let end = steps.time(step) - selector.offsetMs
            let start = end - rangeMs
            while low < stored.timestamps.count, stored.timestamps[low] < start { low += 1 }
            if high < low { high = low }
            while high < stored.timestamps.count, stored.timestamps[high] <= end { high += 1 }
            values[step] = evaluate(
                function.name, timestamps: stored.timestamps, values: stored.values, window: low..<high, rangeStartMs: start, rangeEndMs: end,
                rangeMs: rangeMs, parameter: parameter[step])
        }
        guard values.contains(where: { $0 != nil }) else { return nil }
        return StepVector.Series(labels: function.name == "last_over_time" ? stored.labels : stored.labels.droppingMetricName, values: values)
    }

    /// The function's value over `window` (of `timestamps` and `values`, sorted by time); nil
    /// when it has none (rate of fewer than two samples, say).
    static func evaluate(
        _ name: String, timestamps: [Int64], values: [Double], window: Range<Int>, rangeStartMs: Int64, rangeEndMs: Int64, rangeMs: Int64,
        parameter: Double
    ) -> Double? {
        guard !window.isEmpty else { return nil }
        let samples = values[window]
        switch name {
        case "rate", "increase", "delta":
            return extrapolatedRate(
                timestamps: timestamps, values: values, window: window, rangeStartMs: rangeStartMs, rangeEndMs: rangeEndMs,
                isCounter: name != "delta", perSecond: name == "rate" ? Double(rangeMs) / 1000 : nil)
        case "irate", "idelta":
            guard window.count >= 2 else { return nil }
            let (last, previous) = (window.upperBound - 1, window.upperBound - 2)
            let interval = timestamps[last] - timestamps[previous]
            guard interval != 0 else { return nil }
            if name == "idelta" { return values[last] - values[previous] }
            let change = values[last] < values[previous] ? values[last] : values[last] - values[previous]
            return change / (Double(interval) / 1000)
        case "deriv":
            guard window.count >= 2 else { return nil }
            return slope(timestamps: timestamps[window], values: samples)
        case "avg_over_time": return average(samples)
        case "min_over_time": return samples.dropFirst().reduce(samples.first!) { $1 < $0 || $0.isNaN ? $1 : $0 }
        case "max_over_time": return samples.dropFirst().reduce(samples.first!) { $1 > $0 || $0.isNaN ? $1 : $0 }
        case "sum_over_time": return kahanSum(samples)
        case "count_over_time": return Double(samples.count)
        case "last_over_time": return samples.last
        case "present_over_time": return 1
        case "stddev_over_time", "stdvar_over_time":
            let variance = Self.variance(samples)
            return name == "stddev_over_time" ? variance.squareRoot() : variance
        case "quantile_over_time": return quantile(parameter, Array(samples))
        default: preconditionFailure("not a range function: \(name)")
        }
    }

    /// rate, increase and delta: the change over the window (with counter resets for the first
    /// two), extrapolated towards the window's edges as Prometheus does.
    static func extrapolatedRate(
        timestamps: [Int64], values: [Double], window: Range<Int>, rangeStartMs: Int64, rangeEndMs: Int64, isCounter: Bool, perSecond: Double?
    ) -> Double? {
        guard window.count >= 2 else { return nil }
        let (first, last) = (window.lowerBound, window.upperBound - 1)
        var result = values[last] - values[first]
        // Resets are rare: a search for one (comparisons only) spares most windows the
        // additions, which wait for one another.
        if isCounter, zip(values[first..<last], values[(first + 1)...last]).contains(where: { $1 < $0 }) {
            var previous = values[first]
            for value in values[(first + 1)...last] {
                if value < previous { result += previous }
                previous = value
            }
        }
        var durationToStart = Double(timestamps[first] - rangeStartMs) / 1000
        let durationToEnd = Double(rangeEndMs - timestamps[last]) / 1000
        let sampledInterval = Double(timestamps[last] - timestamps[first]) / 1000
        let averageBetweenSamples = sampledInterval / Double(window.count - 1)
        if isCounter && result > 0 && values[first] >= 0 {
            // A counter does not go below zero: extrapolate at most to where it would be zero.
            durationToStart = Swift.min(durationToStart, sampledInterval * (values[first] / result))
        }
        let threshold = averageBetweenSamples * 1.1
        var extrapolateTo = sampledInterval
        extrapolateTo += durationToStart < threshold ? durationToStart : averageBetweenSamples / 2
        extrapolateTo += durationToEnd < threshold ? durationToEnd : averageBetweenSamples / 2
        var factor = extrapolateTo / sampledInterval
        if let perSecond { factor /= perSecond }
        return result * factor
    }

    /// The least-squares slope per second (deriv), with the times taken from the first sample.
    static func slope(timestamps: ArraySlice<Int64>, values: ArraySlice<Double>) -> Double {
        let origin = timestamps.first!
        if values.allSatisfy({ $0 == values.first! }) { return values.first!.isInfinite ? .nan : 0 }
        var (n, sumX, sumY, sumXY, sumX2) = (0.0, Kahan(), Kahan(), Kahan(), Kahan())
        for (timestamp, value) in zip(timestamps, values) {
            n += 1
            let x = Double(timestamp - origin) / 1000
            sumX.add(x)
            sumY.add(value)
            sumXY.add(x * value)
            sumX2.add(x * x)
        }
        let covariance = sumXY.total - sumX.total * sumY.total / n
        let variance = sumX2.total - sumX.total * sumX.total / n
        return covariance / variance
    }

    /// The mean. Prometheus's avg_over_time takes it as an incremental Kahan sum
    /// (`incrementalMean`), two divisions a sample, each waiting for the last; a Kahan sum
    /// divided once by the count is several times faster and agrees with it to far better than
    /// the 1e-9 the differential test allows (both are compensated). When that sum is not
    /// finite (an infinity or NaN among the values, or an overflow that the incremental mean
    /// avoids), the incremental mean is the answer, for Prometheus's rules on infinities.
    static func average(_ values: ArraySlice<Double>) -> Double {
        var sum = Kahan()
        for value in values { sum.add(value) }
        return sum.sum.isFinite ? sum.total / Double(values.count) : incrementalMean(values)
    }

    /// The mean as Prometheus 2.42's avg_over_time computes it.
    static func incrementalMean(_ values: ArraySlice<Double>) -> Double {
        var mean = Kahan()
        var count = 0.0
        for value in values {
            count += 1
            if mean.sum.isInfinite {
                if value.isInfinite && (mean.sum > 0) == (value > 0) { continue }
                if !value.isInfinite && !value.isNaN { continue }
            }
            mean.add(value / count - mean.sum / count)
        }
        return mean.sum.isInfinite ? mean.sum : mean.total
    }

    static func kahanSum(_ values: ArraySlice<Double>) -> Double {
        var sum = Kahan()
        for value in values { sum.add(value) }
        return sum.sum.isInfinite ? sum.sum : sum.total
    }

    static func variance(_ values: ArraySlice<Double>) -> Double {
        var (count, mean, aux) = (0.0, Kahan(), Kahan())
        for value in values {
            count += 1
            let delta = value - mean.total
            mean.add(delta / count)
            aux.add(delta * (value - mean.total))
        }
        return aux.total / count
    }
}

/// Kahan–Neumaier summation, as Prometheus sums.
struct Kahan {
    var sum = 0.0
    var compensation = 0.0

    mutating func add(_ value: Double) {
        let total = sum + value
        if Swift.abs(sum) >= Swift.abs(value) {
            compensation += (sum - total) + value
        } else {
            compensation += (value - total) + sum
        }
        sum = total
    }

    var total: Double { sum + compensation }
}

/// The φ-quantile of values, interpolated between the two nearest ranks (Prometheus's `quantile`).
func quantile(_ q: Double, _ values: [Double]) -> Double {
    guard !values.isEmpty, !q.isNaN else { return .nan }
    if q < 0 { return -.infinity }
    if q > 1 { return .infinity }
    let sorted = values.sorted { $0 < $1 || ($0.isNaN && !$1.isNaN) }
    let rank = q * Double(sorted.count - 1)
    let lower = Swift.max(0, rank.rounded(.down))
    let upper = Swift.min(Double(sorted.count - 1), lower + 1)
    let weight = rank - rank.rounded(.down)
    return sorted[Int(lower)] * (1 - weight) + sorted[Int(upper)] * weight
}

/// The φ-quantile of a classic histogram's buckets (`le` upper bounds with cumulative counts),
/// interpolated linearly within the bucket, as Prometheus's `bucketQuantile`.
func bucketQuantile(_ q: Double, _ buckets: [(upperBound: Double, count: Double)]) -> Double {
    if q.isNaN { return .nan }
    if q < 0 { return -.infinity }
    if q > 1 { return .infinity }
    var sorted = buckets.sorted { $0.upperBound < $1.upperBound }
    guard sorted.last?.upperBound == .infinity else { return .nan }
    // Buckets of the same bound are one; counts never decrease with the bound.
    var coalesced: [(upperBound: Double, count: Double)] = []
    for bucket in sorted {
        if coalesced.last?.upperBound == bucket.upperBound { coalesced[coalesced.count - 1].count += bucket.count } else { coalesced.append(bucket) }
    }
    sorted = coalesced
    for index in sorted.indices.dropFirst() where sorted[index].count < sorted[index - 1].count {
        sorted[index].count = sorted[index - 1].count
    }
    guard sorted.count >= 2 else { return .nan }
    let observations = sorted.last!.count
    guard observations != 0 else { return .nan }
    var rank = q * observations
    let index = sorted.indices.dropLast().first { sorted[$0].count >= rank } ?? sorted.count - 1
    if index == sorted.count - 1 { return sorted[sorted.count - 2].upperBound }
    if index == 0 && sorted[0].upperBound <= 0 { return sorted[0].upperBound }
    var start = 0.0
    var count = sorted[index].count
    if index > 0 {
        start = sorted[index - 1].upperBound
        count -= sorted[index - 1].count
        rank -= sorted[index - 1].count
    }
    return start + (sorted[index].upperBound - start) * (rank / count)
}
