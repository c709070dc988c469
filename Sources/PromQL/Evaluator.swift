import Foundation

/// Evaluates an expression at every step over samples already loaded. Instant vectors are kept
/// per series with a value (or none) per step; operations that pair or group series work step by
/// step, with the pairing and grouping keys computed once per series.
struct Evaluator {
    let steps: Steps
    let data: LoadedData
    let lookbackMs: Int64

    func evaluate(_ expression: Expression) throws(PromQLError) -> StepValue {
        switch expression {
        case .number(let value): return .scalar(Array(repeating: value, count: steps.count))
        case .string(let text): return .string(text)
        case .vectorSelector(let selector): return .vector(instantVector(selector))
        case .matrixSelector: throw .badData("a range vector is only allowed as a function argument here")
        case .call(let function, let arguments): return try call(function, arguments)
        case .aggregate(let aggregation): return .vector(try aggregate(aggregation))
        case .binary(let operation): return try binary(operation)
        case .negate(let inner):
            switch try evaluate(inner) {
            case .scalar(let values): return .scalar(values.map { -$0 })
            case .vector(let vector):
                return .vector(try merged(vector.series.map { .init(labels: $0.labels.droppingMetricName, values: $0.values.map { $0.map { -$0 } }) }))
            case .string: throw .badData("unary expression only allowed on expressions of type scalar or instant vector")
            }
        }
    }

    private func scalar(_ expression: Expression) throws(PromQLError) -> [Double] {
        guard case .scalar(let values) = try evaluate(expression) else { throw .badData("expected a scalar") }
        return values
    }

    private func vector(_ expression: Expression) throws(PromQLError) -> StepVector {
        guard case .vector(let vector) = try evaluate(expression) else { throw .badData("expected an instant vector") }
        return vector
    }

    private func loaded(_ selector: VectorSelector, rangeMs: Int64?) -> [StoredSeries] {
        data.series[SelectorKey(selector.matchers, QueryEngine.request(selector, rangeMs: rangeMs, steps: steps, lookbackMs: lookbackMs))] ?? []
    }

    // MARK: Selectors

    /// Each series' latest sample in `[t - lookback, t]` at every step (t shifted by the offset).
    private func instantVector(_ selector: VectorSelector) -> StepVector {
        var vector = StepVector()
        for stored in loaded(selector, rangeMs: nil) {
            var values = [Double?](repeating: nil, count: steps.count)
            var next = 0
            var any = false
            for step in 0..<steps.count {
                let reference = steps.time(step) - selector.offsetMs
                while next < stored.timestamps.count, stored.timestamps[next] <= reference { next += 1 }
                if next > 0, stored.timestamps[next - 1] >= reference - lookbackMs {
                    values[step] = stored.values[next - 1]
                    any = true
                }
            }
            if any { vector.series.append(.init(labels: stored.labels, values: values)) }
        }
        return vector
    }

    // MARK: Functions

    private func call(_ function: Function, _ arguments: [Expression]) throws(PromQLError) -> StepValue {
        if let index = arguments.firstIndex(where: { $0.type == .matrix }) {
            // Applied while loading, series by series (`QueryEngine.load`).
            guard case .matrixSelector(let selector, let range) = arguments[index] else { throw .badData("subqueries are not supported by Pulseboard") }
            let parameter = index > 0 ? try scalar(arguments[0]) : Array(repeating: 0, count: steps.count)
            let request = QueryEngine.request(selector, rangeMs: range, steps: steps, lookbackMs: lookbackMs)
            let key = RangeCallKey(function: function.name, selector: SelectorKey(selector.matchers, request), parameter: parameter.map(\.bitPattern))
            return .vector(try merged(data.rangeCalls[key] ?? []))
        }
        switch function.name {
        case "time": return .scalar((0..<steps.count).map { Double(steps.time($0)) / 1000 })
        case "vector": return .vector(StepVector(series: [.init(labels: .empty, values: try scalar(arguments[0]))]))
        case "scalar":
            let vector = try vector(arguments[0])
            return .scalar(
                (0..<steps.count).map { step in
                    let present = vector.series.compactMap { $0.values[step] }
                    return present.count == 1 ? present[0] : .nan
                })
        case "histogram_quantile": return .vector(try histogramQuantile(try scalar(arguments[0]), try vector(arguments[1])))
        default: break
        }
        let input = try vector(arguments[0])
        let parameters = try arguments.dropFirst().map { (argument) throws(PromQLError) in try scalar(argument) }
        let transform: (Double, Int) -> Double? =
            switch function.name {
            case "round":
                { value, step in
                    let inverse = 1 / (parameters.first?[step] ?? 1)
                    return ((value * inverse + 0.5).rounded(.down)) / inverse
                }
            case "clamp":
                { value, step in parameters[1][step] < parameters[0][step] ? nil : Swift.max(parameters[0][step], Swift.min(parameters[1][step], value)) }
            case "clamp_min": { value, step in Swift.max(parameters[0][step], value) }
            case "clamp_max": { value, step in Swift.min(parameters[0][step], value) }
            default:
                { [ofValue = function.ofValue!] value, _ in ofValue(value) }
            }
        return .vector(
            try merged(
                input.series.map { series in
                    .init(
                        labels: series.labels.droppingMetricName,
                        values: series.values.enumerated().map { step, value in value.flatMap { transform($0, step) } })
                }))
    }

    /// histogram_quantile over classic histograms: the `le` series of one histogram (same labels
    /// but `le`) are its buckets at each step.
    private func histogramQuantile(_ q: [Double], _ input: StepVector) throws(PromQLError) -> StepVector {
        var groups: [Labels: [(upperBound: Double, series: Int)]] = [:]
        var order: [Labels] = []
        for (index, series) in input.series.enumerated() {
            guard let le = series.labels["le"], let bound = Double(le) else { continue }
            let key = series.labels.removing(["le"])
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append((bound, index))
        }
        var output = StepAccumulator(steps: steps.count)
        for key in order {
            for step in 0..<steps.count {
                let buckets = groups[key]!.compactMap { bucket in input.series[bucket.series].values[step].map { (upperBound: bucket.upperBound, count: $0) } }
                guard !buckets.isEmpty else { continue }
                try output.set(key.droppingMetricName, step: step, value: bucketQuantile(q[step], buckets))
            }
        }
        return output.vector
    }

    // MARK: Aggregations

    private func aggregate(_ aggregation: Aggregation) throws(PromQLError) -> StepVector {
        let input = try vector(aggregation.expression)
        let parameter = try aggregation.parameter.map { (expression) throws(PromQLError) in try scalar(expression) }
        // The group of each series, computed once.
        var groupLabels: [Labels] = []
        var groupIndex: [Labels: Int] = [:]
        let groupOf = input.series.map { series in
            let labels =
                aggregation.without
                ? series.labels.removing(aggregation.grouping + [Labels.metricName]) : series.labels.keeping(aggregation.grouping)
            if let index = groupIndex[labels] { return index }
            groupIndex[labels] = groupLabels.count
            groupLabels.append(labels)
            return groupLabels.count - 1
        }
        var output = StepAccumulator(steps: steps.count)
        var members = [[Int]](repeating: [], count: groupLabels.count)
        for step in 0..<steps.count {
            for index in members.indices { members[index].removeAll(keepingCapacity: true) }
            for (series, group) in groupOf.enumerated() where input.series[series].values[step] != nil { members[group].append(series) }
            for (group, seriesInGroup) in members.enumerated() where !seriesInGroup.isEmpty {
                let values = seriesInGroup.map { input.series[$0].values[step]! }
                switch aggregation.op {
                case .topk, .bottomk:
                    let k = parameter![step]
                    guard k.isFinite || k.isNaN, Swift.abs(k) < 9.2e18 else { throw .execution("Scalar value \(k) overflows int64") }
                    guard k >= 1 else { continue }
                    // NaN is never preferred; among equal values the order is Prometheus's own (a heap), so ties may differ.
                    let ranked = zip(seriesInGroup, values).sorted { a, b in
                        if a.1.isNaN != b.1.isNaN { return !a.1.isNaN }
                        return aggregation.op == .topk ? a.1 > b.1 : a.1 < b.1
                    }
                    for (series, value) in ranked.prefix(Int(k)) {
                        try output.set(input.series[series].labels, step: step, value: value)
                    }
                default:
                    try output.set(groupLabels[group], step: step, value: Self.aggregate(aggregation.op, values, parameter: parameter?[step] ?? 0))
                }
            }
        }
        return output.vector
    }

    /// One group's value at one step, computed as Prometheus computes it.
    static func aggregate(_ op: AggregationOperator, _ values: [Double], parameter: Double) -> Double {
        switch op {
        case .sum: return values.dropFirst().reduce(values[0], +)
        case .avg:
            var mean = values[0]
            for (index, value) in values.enumerated().dropFirst() {
                let count = Double(index + 1)
                if mean.isInfinite {
                    if value.isInfinite && (mean > 0) == (value > 0) { continue }
                    if !value.isInfinite && !value.isNaN { continue }
                }
                mean += value / count - mean / count
            }
            return mean
        case .min: return values.dropFirst().reduce(values[0]) { $0 > $1 || $0.isNaN ? $1 : $0 }
        case .max: return values.dropFirst().reduce(values[0]) { $0 < $1 || $0.isNaN ? $1 : $0 }
        case .count: return Double(values.count)
        case .group: return 1
        case .stddev, .stdvar:
            var (mean, sum) = (values[0], 0.0)
            for (index, value) in values.enumerated().dropFirst() {
                let delta = value - mean
                mean += delta / Double(index + 1)
                sum += delta * (value - mean)
            }
            let variance = sum / Double(values.count)
            return op == .stddev ? variance.squareRoot() : variance
        case .quantile: return quantile(parameter, values)
        case .topk, .bottomk: preconditionFailure("topk and bottomk keep series")
        }
    }

    // MARK: Binary operations

    private func binary(_ operation: BinaryOperation) throws(PromQLError) -> StepValue {
        let (lhs, rhs) = (try evaluate(operation.lhs), try evaluate(operation.rhs))
        switch (lhs, rhs) {
        case (.scalar(let a), .scalar(let b)):
            return .scalar(
                zip(a, b).map { x, y in
                    let (value, keep) = Self.apply(operation.op, x, y)
                    return operation.op.isComparison ? (keep ? 1 : 0) : value
                })
        case (.vector(let vector), .scalar(let scalar)): return .vector(try vectorScalar(operation, vector, scalar, scalarOnLeft: false))
        case (.scalar(let scalar), .vector(let vector)): return .vector(try vectorScalar(operation, vector, scalar, scalarOnLeft: true))
        case (.vector(let a), .vector(let b)):
            let matching = operation.matching ?? VectorMatching()
            return .vector(operation.op.isSetOperator ? try setOperation(operation.op, a, b, matching) : try vectorVector(operation, a, b, matching))
        default: throw .badData("binary expression must contain only scalar and instant vector types")
        }
    }

    /// The value of `lhs op rhs` and, for a comparison, whether it holds.
    static func apply(_ op: BinaryOperator, _ lhs: Double, _ rhs: Double) -> (value: Double, keep: Bool) {
        switch op {
        case .add: (lhs + rhs, true)
        case .subtract: (lhs - rhs, true)
        case .multiply: (lhs * rhs, true)
        case .divide: (lhs / rhs, true)
        case .modulo: (fmod(lhs, rhs), true)
        case .power: (pow(lhs, rhs), true)
        case .atan2: (Foundation.atan2(lhs, rhs), true)
        case .equal: (lhs, lhs == rhs)
        case .notEqual: (lhs, lhs != rhs)
        case .greater: (lhs, lhs > rhs)
        case .less: (lhs, lhs < rhs)
        case .greaterOrEqual: (lhs, lhs >= rhs)
        case .lessOrEqual: (lhs, lhs <= rhs)
        case .and, .or, .unless: preconditionFailure("set operators pair series")
        }
    }

    private func vectorScalar(_ operation: BinaryOperation, _ vector: StepVector, _ scalar: [Double], scalarOnLeft: Bool) throws(PromQLError) -> StepVector {
        let dropName = operation.op.dropsMetricName || operation.returnBool
        return try merged(
            vector.series.map { series in
                .init(
                    labels: dropName ? series.labels.droppingMetricName : series.labels,
                    values: series.values.enumerated().map { step, value in
                        guard let value else { return nil }
                        let (lhs, rhs) = scalarOnLeft ? (scalar[step], value) : (value, scalar[step])
                        var (result, keep) = Self.apply(operation.op, lhs, rhs)
                        // A comparison keeps the vector's value, on whichever side it is.
                        if operation.op.isComparison { result = value }
                        if operation.returnBool { return keep ? 1 : 0 }
                        return keep ? result : nil
                    })
            })
    }

    /// The labels two series are paired by.
    private static func signature(_ labels: Labels, _ matching: VectorMatching) -> Labels {
        matching.on ? labels.keeping(matching.labels) : labels.removing(matching.labels + [Labels.metricName])
    }

    private func setOperation(_ op: BinaryOperator, _ lhs: StepVector, _ rhs: StepVector, _ matching: VectorMatching) throws(PromQLError) -> StepVector {
        let (left, right) = (lhs.series.map { Self.signature($0.labels, matching) }, rhs.series.map { Self.signature($0.labels, matching) })
        var output = StepAccumulator(steps: steps.count)
        for step in 0..<steps.count {
            let presentLeft = lhs.series.indices.filter { lhs.series[$0].values[step] != nil }
            let presentRight = rhs.series.indices.filter { rhs.series[$0].values[step] != nil }
            let rightSignatures = Set(presentRight.map { right[$0] })
            switch op {
            case .and:
                for index in presentLeft where rightSignatures.contains(left[index]) {
                    try output.set(lhs.series[index].labels, step: step, value: lhs.series[index].values[step]!)
                }
            case .unless:
                for index in presentLeft where !rightSignatures.contains(left[index]) {
                    try output.set(lhs.series[index].labels, step: step, value: lhs.series[index].values[step]!)
                }
            default:
                for index in presentLeft { try output.set(lhs.series[index].labels, step: step, value: lhs.series[index].values[step]!) }
                let leftSignatures = Set(presentLeft.map { left[$0] })
                for index in presentRight where !leftSignatures.contains(right[index]) {
                    try output.set(rhs.series[index].labels, step: step, value: rhs.series[index].values[step]!)
                }
            }
        }
        return output.vector
    }

    private func vectorVector(_ operation: BinaryOperation, _ lhs: StepVector, _ rhs: StepVector, _ matching: VectorMatching) throws(PromQLError) -> StepVector
    {
        // One-to-many is many-to-one with the sides swapped (and swapped back for the values).
        let swapped = matching.cardinality == .oneToMany
        let (many, one) = swapped ? (rhs, lhs) : (lhs, rhs)
        let (manySignatures, oneSignatures) = (many.series.map { Self.signature($0.labels, matching) }, one.series.map { Self.signature($0.labels, matching) })
        var resultLabels: [Int: Labels] = [:]
        var output = StepAccumulator(steps: steps.count)
        for step in 0..<steps.count {
            var oneBySignature: [Labels: Int] = [:]
            for index in one.series.indices where one.series[index].values[step] != nil {
                if let duplicate = oneBySignature.updateValue(index, forKey: oneSignatures[index]) {
                    throw .execution(
                        "found duplicate series for the match group \(oneSignatures[index]) on the \(swapped ? "left" : "right") hand-side of the operation: "
                            + "[\(one.series[index].labels), \(one.series[duplicate].labels)];many-to-many matching not allowed: matching labels must be unique on one side"
                    )
                }
            }
            var matched: [Labels: Set<Labels>] = [:]
            for index in many.series.indices {
                guard let manyValue = many.series[index].values[step], let match = oneBySignature[manySignatures[index]] else { continue }
                let oneValue = one.series[match].values[step]!
                let (x, y) = swapped ? (oneValue, manyValue) : (manyValue, oneValue)
                var (value, keep) = Self.apply(operation.op, x, y)
                if operation.returnBool {
                    (value, keep) = (keep ? 1 : 0, true)
                }
                guard keep else { continue }
                let key = index * one.series.count + match
                let labels = resultLabels[key] ?? Self.resultLabels(many.series[index].labels, one.series[match].labels, operation, matching)
                resultLabels[key] = labels
                let signature = manySignatures[index]
                if matching.cardinality == .oneToOne {
                    guard matched[signature] == nil else {
                        throw .execution("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
                    }
                    matched[signature] = []
                } else {
                    guard matched[signature, default: []].insert(labels).inserted else {
                        throw .execution("multiple matches for labels: grouping labels must ensure unique matches")
                    }
                }
                try output.set(labels, step: step, value: value)
            }
        }
        return output.vector
    }

    /// The labels of a result of two paired series (Prometheus's `resultMetric`).
    private static func resultLabels(_ many: Labels, _ one: Labels, _ operation: BinaryOperation, _ matching: VectorMatching) -> Labels {
        var labels = operation.op.dropsMetricName || operation.returnBool ? many.droppingMetricName : many
        if matching.cardinality == .oneToOne {
            labels = matching.on ? labels.keeping(matching.labels) : labels.removing(matching.labels)
        }
        for name in matching.include {
            labels = labels.setting(name, to: one[name] ?? "")
        }
        return labels
    }

    // MARK: Results

    /// Series with the same labels joined into one; two with a value at the same step are an error.
    private func merged(_ series: [StepVector.Series]) throws(PromQLError) -> StepVector {
        var output = StepAccumulator(steps: steps.count)
        for one in series {
            for (step, value) in one.values.enumerated() {
                if let value { try output.set(one.labels, step: step, value: value) }
            }
        }
        return output.vector
    }
}

/// Builds a vector step by step; one labelset has at most one value per step.
struct StepAccumulator {
    let steps: Int
    private var index: [Labels: Int] = [:]
    private(set) var vector = StepVector()

    init(steps: Int) {
        self.steps = steps
    }

    mutating func set(_ labels: Labels, step: Int, value: Double) throws(PromQLError) {
        let position: Int
        if let known = index[labels] {
            position = known
        } else {
            position = vector.series.count
            index[labels] = position
            vector.series.append(.init(labels: labels, values: [Double?](repeating: nil, count: steps)))
        }
        guard vector.series[position].values[step] == nil else { throw .execution("vector cannot contain metrics with the same labelset") }
        vector.series[position].values[step] = value
    }
}
