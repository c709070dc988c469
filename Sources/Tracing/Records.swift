import Foundation
import PulseboardDatabase
import PulseboardKernel

/// One request as the request log keeps it (a row of `api_logs`). Headers are a JSON object of
/// the headers that are not secrets; bodies, for JSON only, are redacted and capped JSON text
/// (`Redaction`). Read back by column name, and answered by the API with the same names.
package struct RequestRecord: Codable, Sendable, Equatable {
    package var id: Int64?
    package var traceID: String
    package var createdAt: Date
    package var method: String
    /// The route's pattern (`/api/v1/classes/{id}`), or `NotFound`.
    package var route: String
    /// The path as requested, without its query string (where clients that cannot set headers
    /// put tokens).
    package var endpoint: String
    package var requestHeader: String
    package var requestBody: String?
    package var responseStatus: Int
    package var responseHeader: String
    package var responseBody: String?
    package var durationMs: Double
    package var ipAddress: String
    package var userID: Int64?

    package init(
        traceID: String, createdAt: Date, method: String, route: String, endpoint: String, requestHeader: String, requestBody: String?,
        responseStatus: Int, responseHeader: String, responseBody: String?, durationMs: Double, ipAddress: String, userID: Int64?
    ) {
        self.traceID = traceID
        self.createdAt = createdAt
        self.method = method
        self.route = route
        self.endpoint = endpoint
        self.requestHeader = requestHeader
        self.requestBody = requestBody
        self.responseStatus = responseStatus
        self.responseHeader = responseHeader
        self.responseBody = responseBody
        self.durationMs = durationMs
        self.ipAddress = ipAddress
        self.userID = userID
    }

    static let columns = [
        "trace_id", "created_at", "method", "route", "endpoint", "request_header", "request_body", "response_status", "response_header", "response_body",
        "duration_ms", "ip_address", "user_id",
    ]

    static func insert(_ records: [RequestRecord]) -> SQLStatement? {
        SQLStatement.insert(
            into: "api_logs", columns: columns,
            rows: records.map { record in
                [
                    .text(record.traceID), .integer(record.createdAt.millisecondsSince1970), .text(record.method), .text(record.route),
                    .text(record.endpoint), .text(record.requestHeader), SQLValue(record.requestBody), .integer(Int64(record.responseStatus)),
                    .text(record.responseHeader), SQLValue(record.responseBody), .real(record.durationMs), .text(record.ipAddress),
                    SQLValue(record.userID),
                ]
            })
    }

    private enum CodingKeys: String, CodingKey {
        case id, traceID = "traceId", createdAt, method, route, endpoint, requestHeader, requestBody, responseStatus, responseHeader, responseBody
        case durationMs, ipAddress, userID = "userId"
    }
}

/// Where a step of a task stands (seed 003's statuses).
package enum TaskStatus: String, Codable, Sendable {
    case start = "START"
    case inProgress = "IN_PROGRESS"
    case success = "SUCCESS"
    case failed = "FAILED"
}

/// One step of a multi-step task (a row of `task_progress_logs`): inputs and outputs are small
/// JSON summaries (counts and ids, never the data itself); a failure keeps its message and its
/// error chain (Swift errors carry no stack; the chain is the error as its type describes itself).
package struct TaskStep: Codable, Sendable, Equatable {
    package var id: Int64?
    package var traceID: String
    package var createdAt: Date
    package var taskName: String
    package var stepName: String
    package var status: TaskStatus
    package var executionOrder: Int
    package var inputData: String?
    package var outputData: String?
    package var errorMessage: String?
    package var stackTrace: String?

    static let columns = [
        "trace_id", "created_at", "task_name", "step_name", "status", "execution_order", "input_data", "output_data", "error_message", "stack_trace",
    ]

    static func insert(_ steps: [TaskStep]) -> SQLStatement? {
        SQLStatement.insert(
            into: "task_progress_logs", columns: columns,
            rows: steps.map { step in
                [
                    .text(step.traceID), .integer(step.createdAt.millisecondsSince1970), .text(step.taskName), .text(step.stepName),
                    .text(step.status.rawValue), .integer(Int64(step.executionOrder)), SQLValue(step.inputData), SQLValue(step.outputData),
                    SQLValue(step.errorMessage), SQLValue(step.stackTrace),
                ]
            })
    }

    private enum CodingKeys: String, CodingKey {
        case id, traceID = "traceId", createdAt, taskName, stepName, status, executionOrder, inputData, outputData, errorMessage, stackTrace
    }
}

/// Records the steps of one task under one trace id, numbering them in the order they happen.
/// Without a log (it is switched off) it records nothing.
package struct TaskRecorder: Sendable {
    let log: OperationsLog?
    package let traceID: String
    let taskName: String
    private var order: Int

    /// `firstOrder` continues a task that another part began (the event processor goes on from
    /// the ingest request's steps).
    package init(log: OperationsLog?, traceID: String, task: String, firstOrder: Int = 1) {
        self.log = log
        self.traceID = traceID
        self.taskName = task
        self.order = firstOrder
    }

    package mutating func record(
        _ step: String, _ status: TaskStatus, input: JSONValue? = nil, output: JSONValue? = nil, error: (any Error)? = nil
    ) {
        defer { order += 1 }
        guard let log else { return }
        log.record(
            .step(
                TaskStep(
                    traceID: traceID, createdAt: Date(), taskName: taskName, stepName: step, status: status, executionOrder: order,
                    inputData: input.map(Self.text), outputData: output.map(Self.text), errorMessage: error.map { "\($0)" },
                    stackTrace: error.map { String(reflecting: $0) })))
    }

    /// Runs `work` as one step: START, then SUCCESS with its output or FAILED with its error
    /// (rethrown).
    package mutating func step<T>(
        _ step: String, input: JSONValue? = nil, _ work: () async throws -> T, output: (T) -> JSONValue? = { _ in nil }
    ) async throws -> T {
        record(step, .start, input: input)
        do {
            let result = try await work()
            record(step, .success, output: output(result))
            return result
        } catch {
            record(step, .failed, error: error)
            throw error
        }
    }

    private static func text(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.sortedKeys.encode(value), as: UTF8.self)) ?? "null"
    }
}
