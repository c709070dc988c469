import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel
import PulseboardTracing

/// The request log and the task progress log for admins: `GET /api/v1/logs/requests` (filtered
/// by status, route, user and time), one trace with all its task steps
/// (`GET /api/v1/logs/trace/{traceId}`), and both as CSV files with seed 003's column names.
struct LogsController {
    let reader: OperationsLogReader

    struct RequestList: Encodable {
        var requests: [RequestRecord]
        var limit: Int
    }

    var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/logs/requests") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let filter = try Self.filter(request, defaultLimit: 100, maxLimit: 1_000)
            return try JSONResponse(RequestList(requests: try await reader.requests(filter), limit: filter.limit)).response
        }
        router.get("/logs/requests.csv") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let filter = try Self.filter(request, defaultLimit: 100_000, maxLimit: 100_000)
            return .csvDownload(try OperationsLogCSV.requests(try await reader.requests(filter)), filename: "api_logs.csv")
        }
        router.get("/logs/tasks.csv") { request, context -> Response in
            _ = try context.requireUser([.admin])
            let filter = try Self.filter(request, defaultLimit: 100_000, maxLimit: 100_000)
            return .csvDownload(
                try OperationsLogCSV.steps(try await reader.steps(from: filter.from, to: filter.to, limit: filter.limit)), filename: "task_progress_logs.csv")
        }
        router.get("/logs/trace/{traceId}") { _, context -> Response in
            _ = try context.requireUser([.admin])
            let traceID = try context.parameters.require("traceId")
            let trace = try await reader.trace(traceID)
            guard !trace.requests.isEmpty || !trace.steps.isEmpty else {
                throw APIError.notFound("Nothing was logged under trace id \(traceID) (or it is older than --request-log-days).")
            }
            return try JSONResponse(trace).response
        }
        return router
    }

    static func filter(_ request: Request, defaultLimit: Int, maxLimit: Int) throws -> OperationsLogReader.Filter {
        let query = request.uri.queryParameters
        var filter = OperationsLogReader.Filter()
        if let status = query.get("status") {
            guard let statuses = OperationsLogReader.Filter.statuses(status) else {
                throw APIError.badRequest("'status' is a status code (500) or a class of them (5xx).", details: ["field": .string("status")])
            }
            filter.status = statuses
        }
        filter.route = query.get("route")
        filter.user = query.get("user")
        filter.from = try QueryParameter.time(query.get("from"), field: "from").map(Date.init(millisecondsSince1970:))
        filter.to = try QueryParameter.time(query.get("to"), field: "to").map(Date.init(millisecondsSince1970:))
        filter.limit = try QueryParameter.integer(query.get("limit"), field: "limit", range: 1...maxLimit) ?? defaultLimit
        return filter
    }
}
