/// Why a query was refused: `badData` for what cannot be parsed or is not supported (HTTP 400,
/// `bad_data`), `execution` for what fails while it runs (HTTP 422, `execution`).
public enum PromQLError: Error, Equatable, Sendable {
    case badData(String)
    case execution(String)

    public var message: String {
        switch self {
        case .badData(let message), .execution(let message): message
        }
    }
}

/// The types of PromQL values.
public enum ValueType: String, Sendable {
    case scalar, vector, matrix, string

    /// As Prometheus names them in its error messages.
    var documented: String {
        switch self {
        case .scalar: "scalar"
        case .vector: "instant vector"
        case .matrix: "range vector"
        case .string: "string"
        }
    }
}

/// A parsed PromQL expression.
public indirect enum Expression: Sendable {
    case number(Double)
    case string(String)
    case vectorSelector(VectorSelector)
    /// `selector[range]`.
    case matrixSelector(VectorSelector, rangeMs: Int64)
    case call(Function, [Expression])
    case aggregate(Aggregation)
    case binary(BinaryOperation)
    /// Unary minus (a unary plus is the expression itself).
    case negate(Expression)

    public var type: ValueType {
        switch self {
        case .number: .scalar
        case .string: .string
        case .vectorSelector: .vector
        case .matrixSelector: .matrix
        case .call(let function, _): function.returns
        case .aggregate: .vector
        case .binary(let operation): operation.lhs.type == .scalar && operation.rhs.type == .scalar ? .scalar : .vector
        case .negate(let inner): inner.type
        }
    }
}

/// `name{matchers} offset 5m`; the name, when given, is one of the matchers (`__name__="name"`).
public struct VectorSelector: Sendable {
    public var matchers: [LabelMatcher]
    public var offsetMs: Int64 = 0
}

public enum AggregationOperator: String, Sendable, CaseIterable {
    case sum, avg, min, max, count, topk, bottomk, quantile, stddev, stdvar, group

    /// topk, bottomk and quantile take a scalar parameter before the vector.
    var takesParameter: Bool { [.topk, .bottomk, .quantile].contains(self) }
}

public struct Aggregation: Sendable {
    public var op: AggregationOperator
    public var parameter: Expression?
    /// `by (…)` or, with `without`, `without (…)`.
    public var grouping: [String]
    public var without: Bool
    public var expression: Expression
}

public enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", power = "^", atan2
    case equal = "==", notEqual = "!=", greater = ">", less = "<", greaterOrEqual = ">=", lessOrEqual = "<="
    case and, or, unless

    var isComparison: Bool { [.equal, .notEqual, .greater, .less, .greaterOrEqual, .lessOrEqual].contains(self) }
    var isSetOperator: Bool { [.and, .or, .unless].contains(self) }
    /// Arithmetic drops the metric name from its result; comparisons (without `bool`) filter and keep it.
    var dropsMetricName: Bool { [.add, .subtract, .multiply, .divide, .modulo, .power].contains(self) }

    /// Binding strength, loosest first: or; and, unless; comparisons; + -; * / % atan2; ^.
    var precedence: Int {
        switch self {
        case .or: 1
        case .and, .unless: 2
        case .equal, .notEqual, .greater, .less, .greaterOrEqual, .lessOrEqual: 3
        case .add, .subtract: 4
        case .multiply, .divide, .modulo, .atan2: 5
        case .power: 6
        }
    }
}

/// How the series of two vectors are paired: on all labels but the name (default), `on(…)` or
/// `ignoring(…)`; one-to-one, or many-to-one with `group_left(…)` / `group_right(…)` naming the
/// labels to copy from the "one" side. Set operators pair many-to-many.
public struct VectorMatching: Sendable {
    public enum Cardinality: Sendable {
        case oneToOne, manyToOne, oneToMany, manyToMany
    }

    public var cardinality: Cardinality = .oneToOne
    public var on = false
    public var labels: [String] = []
    public var include: [String] = []
}

public struct BinaryOperation: Sendable {
    public var op: BinaryOperator
    public var lhs: Expression
    public var rhs: Expression
    /// `bool`: comparisons answer 0 or 1 instead of filtering.
    public var returnBool = false
    /// For operations between two vectors.
    public var matching: VectorMatching?
}
