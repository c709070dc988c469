/// Parses PromQL into an `Expression` and checks its types, with Prometheus's precedence (loosest
/// first: `or`; `and` `unless`; comparisons; `+ -`; `* / % atan2`; `^`, which is right-associative;
/// a unary minus binds like `*`). What Pulseboard does not evaluate (subqueries, `@`, functions
/// outside `Function.all`) is refused here with a message that names it, never run to a wrong answer.
public struct Parser {
    private var tokens: [Token]
    private var position = 0

    public static func parse(_ query: String) throws(PromQLError) -> Expression {
        var parser = Parser(tokens: try Lexer.tokens(query))
        guard parser.peek != .end else { throw .badData("no expression found in input") }
        let expression = try parser.expression(minimumPrecedence: 0)
        guard parser.peek == .end else { throw .badData("unexpected \(parser.peek.text)") }
        return expression
    }

    /// A Prometheus duration (`15s`, `1m30s`, `500ms`) in milliseconds.
    public static func duration(_ text: String) -> Int64? {
        guard let tokens = try? Lexer.tokens(text), tokens.count == 2, case .duration(let milliseconds) = tokens[0] else { return nil }
        return milliseconds
    }

    private init(tokens: [Token]) {
        self.tokens = tokens
    }

    private var peek: Token { tokens[position] }
    private func peek(_ offset: Int) -> Token { tokens[min(position + offset, tokens.count - 1)] }

    private mutating func take() -> Token {
        defer { if position < tokens.count - 1 { position += 1 } }
        return tokens[position]
    }

    private mutating func expect(_ symbol: String) throws(PromQLError) {
        guard take() == .symbol(symbol) else { throw .badData("expected \"\(symbol)\", found \(tokens[position - 1].text)") }
    }

    private func isKeyword(_ word: String) -> Bool {
        if case .identifier(let name) = peek { return name.lowercased() == word }
        return false
    }

    // MARK: Binary operators

    private var binaryOperator: BinaryOperator? {
        switch peek {
        case .symbol(let symbol): BinaryOperator(rawValue: symbol).flatMap { $0.isSetOperator || $0 == .atan2 ? nil : $0 }
        case .identifier(let word): [.and, .or, .unless, .atan2].first { $0.rawValue == word.lowercased() }
        default: nil
        }
    }

    private mutating func expression(minimumPrecedence: Int) throws(PromQLError) -> Expression {
        var lhs = try unary()
        while let op = binaryOperator, op.precedence >= minimumPrecedence {
            _ = take()
            var operation = BinaryOperation(op: op, lhs: lhs, rhs: .number(0))
            try modifiers(of: &operation)
            // Left-associative but for ^: the right side takes only tighter operators.
            operation.rhs = try expression(minimumPrecedence: op == .power ? op.precedence : op.precedence + 1)
            try check(&operation)
            lhs = .binary(operation)
        }
        return lhs
    }

    /// `bool`, `on(…)` / `ignoring(…)`, `group_left(…)` / `group_right(…)` after an operator.
    private mutating func modifiers(of operation: inout BinaryOperation) throws(PromQLError) {
        if isKeyword("bool") {
            _ = take()
            operation.returnBool = true
        }
        var matching = VectorMatching()
        var modified = false
        if isKeyword("on") || isKeyword("ignoring") {
            matching.on = isKeyword("on")
            _ = take()
            matching.labels = try labelList()
            modified = true
        }
        if isKeyword("group_left") || isKeyword("group_right") {
            matching.cardinality = isKeyword("group_left") ? .manyToOne : .oneToMany
            _ = take()
            if peek == .symbol("(") { matching.include = try labelList() }
            modified = true
        }
        if modified || operation.op.isSetOperator { operation.matching = matching }
    }

    /// The rules Prometheus checks on a binary operation, with its messages.
    private func check(_ operation: inout BinaryOperation) throws(PromQLError) {
        let (lhs, rhs) = (operation.lhs.type, operation.rhs.type)
        guard [.scalar, .vector].contains(lhs), [.scalar, .vector].contains(rhs) else {
            throw .badData("binary expression must contain only scalar and instant vector types")
        }
        let op = operation.op
        if operation.returnBool && !op.isComparison { throw .badData("bool modifier can only be used on comparison operators") }
        if op.isComparison && lhs == .scalar && rhs == .scalar && !operation.returnBool {
            throw .badData("comparisons between scalars must use BOOL modifier")
        }
        if op.isSetOperator && (lhs == .scalar || rhs == .scalar) {
            throw .badData("set operator \"\(op.rawValue)\" not allowed in binary scalar expression")
        }
        if var matching = operation.matching {
            if lhs != .vector || rhs != .vector { throw .badData("vector matching only allowed between instant vectors") }
            if op.isSetOperator {
                if matching.cardinality != .oneToOne { throw .badData("no grouping allowed for \"\(op.rawValue)\" operation") }
                matching.cardinality = .manyToMany
            }
            if matching.on, let both = matching.include.first(where: matching.labels.contains) {
                throw .badData("label \"\(both)\" must not occur in ON and GROUP clause at once")
            }
            operation.matching = matching
        } else if lhs == .vector && rhs == .vector {
            operation.matching = VectorMatching()
        }
    }

    // MARK: Operands

    private mutating func unary() throws(PromQLError) -> Expression {
        guard peek == .symbol("-") || peek == .symbol("+") else { return try postfix(primary()) }
        let negative = take() == .symbol("-")
        // A unary operator binds like `*`: `-a * b` is `(-a) * b`, `-a ^ b` is `-(a ^ b)`.
        let operand = try expression(minimumPrecedence: BinaryOperator.power.precedence)
        guard [.scalar, .vector].contains(operand.type) else { throw .badData("unary expression only allowed on expressions of type scalar or instant vector") }
        guard negative else { return operand }
        if case .number(let value) = operand { return .number(-value) }
        return .negate(operand)
    }

    private mutating func primary() throws(PromQLError) -> Expression {
        switch take() {
        case .number(let value): return .number(value)
        case .string(let text): return .string(text)
        case .duration: throw .badData("unexpected duration: durations are only allowed in ranges and after offset")
        case .symbol("("):
            let inner = try expression(minimumPrecedence: 0)
            try expect(")")
            return inner
        case .symbol("{"):
            position -= 1
            return .vectorSelector(try selector(name: nil))
        case .identifier(let name):
            if let op = AggregationOperator(rawValue: name.lowercased()),
                peek == .symbol("(") || isKeyword("by") || isKeyword("without")
            {
                return try aggregation(op)
            }
            if peek == .symbol("(") { return try call(name) }
            return .vectorSelector(try selector(name: name))
        case let token:
            throw .badData("unexpected \(token.text)")
        }
    }

    /// `[range]` and `offset` after a selector.
    private mutating func postfix(_ expression: Expression) throws(PromQLError) -> Expression {
        var expression = expression
        while true {
            if peek == .symbol("[") {
                _ = take()
                guard case .duration(let range) = take() else { throw .badData("expected a duration in the range, found \(tokens[position - 1].text)") }
                // `[5m:1m]`: the lexer reads `:1m` as a name (colons belong to metric names).
                if case .identifier(let word) = peek, word.hasPrefix(":") { throw .badData("subqueries are not supported by Pulseboard") }
                if peek == .symbol(":") { throw .badData("subqueries are not supported by Pulseboard") }
                try expect("]")
                guard case .vectorSelector(let selector) = expression else {
                    throw .badData("ranges only allowed for vector selectors")
                }
                guard range > 0 else { throw .badData("range must be greater than zero") }
                expression = .matrixSelector(selector, rangeMs: range)
            } else if isKeyword("offset") {
                _ = take()
                var sign: Int64 = 1
                if peek == .symbol("-") {
                    _ = take()
                    sign = -1
                }
                guard case .duration(let offset) = take() else { throw .badData("expected a duration after offset") }
                switch expression {
                case .vectorSelector(var selector) where selector.offsetMs == 0:
                    selector.offsetMs = sign * offset
                    expression = .vectorSelector(selector)
                case .matrixSelector(var selector, let range) where selector.offsetMs == 0:
                    selector.offsetMs = sign * offset
                    expression = .matrixSelector(selector, rangeMs: range)
                case .vectorSelector, .matrixSelector: throw .badData("offset may not be set multiple times")
                default: throw .badData("offset modifier must be preceded by an instant vector selector or range vector selector")
                }
            } else if peek == .symbol("@") {
                throw .badData("the @ modifier is not supported by Pulseboard")
            } else {
                return expression
            }
        }
    }

    /// `name{matchers}`, `name` or `{matchers}`.
    private mutating func selector(name: String?) throws(PromQLError) -> VectorSelector {
        var matchers: [LabelMatcher] = []
        if let name { matchers.append(try LabelMatcher(Labels.metricName, .equal, name)) }
        if peek == .symbol("{") {
            _ = take()
            while peek != .symbol("}") {
                guard case .identifier(let label) = take() else { throw .badData("expected a label name in the selector, found \(tokens[position - 1].text)") }
                guard case .symbol(let symbol) = take(), let kind = LabelMatcher.Kind(rawValue: symbol) else {
                    throw .badData("expected a label matching operator after \(label)")
                }
                guard case .string(let value) = take() else { throw .badData("expected a string after \(label)\(symbol)") }
                if label == Labels.metricName, name != nil { throw .badData("metric name must not be set twice: \"\(name!)\" or \"\(value)\"") }
                matchers.append(try LabelMatcher(label, kind, value))
                guard peek == .symbol(",") else { break }
                _ = take()
            }
            try expect("}")
        }
        guard matchers.contains(where: { !$0.matches("") }) else {
            throw .badData("vector selector must contain at least one non-empty matcher")
        }
        return VectorSelector(matchers: matchers)
    }

    /// `(a, b)` after by, without, on, ignoring, group_left, group_right.
    private mutating func labelList() throws(PromQLError) -> [String] {
        try expect("(")
        var labels: [String] = []
        while peek != .symbol(")") {
            guard case .identifier(let label) = take() else { throw .badData("expected a label name, found \(tokens[position - 1].text)") }
            labels.append(label)
            guard peek == .symbol(",") else { break }
            _ = take()
        }
        try expect(")")
        return labels
    }

    private mutating func aggregation(_ op: AggregationOperator) throws(PromQLError) -> Expression {
        var grouping: [String] = []
        var without = false
        var grouped = false
        func groupingClause(_ parser: inout Parser) throws(PromQLError) {
            guard parser.isKeyword("by") || parser.isKeyword("without") else { return }
            if grouped { throw .badData("aggregation may have only one grouping clause") }
            without = parser.isKeyword("without")
            _ = parser.take()
            grouping = try parser.labelList()
            grouped = true
        }
        try groupingClause(&self)
        let arguments = try argumentList()
        try groupingClause(&self)
        let expected = op.takesParameter ? 2 : 1
        guard arguments.count == expected else {
            throw .badData("wrong number of arguments for aggregate expression provided, expected \(expected), got \(arguments.count)")
        }
        let expression = arguments[expected - 1]
        guard expression.type == .vector else {
            throw .badData("expected type instant vector in aggregation expression, got \(expression.type.documented)")
        }
        if op.takesParameter, arguments[0].type != .scalar {
            throw .badData("expected type scalar in aggregation parameter, got \(arguments[0].type.documented)")
        }
        return .aggregate(Aggregation(op: op, parameter: op.takesParameter ? arguments[0] : nil, grouping: grouping, without: without, expression: expression))
    }

    private mutating func call(_ name: String) throws(PromQLError) -> Expression {
        guard let function = Function.named(name) else {
            if Function.unsupported.contains(name) { throw .badData("function \"\(name)\" is not supported by Pulseboard") }
            throw .badData("unknown function with name \"\(name)\"")
        }
        let arguments = try argumentList()
        let required = function.arguments.count - function.optional
        guard (required...function.arguments.count).contains(arguments.count) else {
            throw .badData("expected \(required) argument(s) in call to \"\(name)\", got \(arguments.count)")
        }
        for (argument, type) in zip(arguments, function.arguments) where argument.type != type {
            throw .badData("expected type \(type.documented) in call to function \"\(name)\", got \(argument.type.documented)")
        }
        return .call(function, arguments)
    }

    private mutating func argumentList() throws(PromQLError) -> [Expression] {
        try expect("(")
        var arguments: [Expression] = []
        while peek != .symbol(")") {
            arguments.append(try expression(minimumPrecedence: 0))
            guard peek == .symbol(",") else { break }
            _ = take()
        }
        try expect(")")
        return arguments
    }
}
