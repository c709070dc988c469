import Foundation
import HTTPTypes
import Hummingbird
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel
import PulseboardPromQL

/// Prometheus's HTTP query API under `/prometheus/api/v1/`, so that Grafana (data source URL
/// `http://host:8080/prometheus`) and other PromQL tools use Pulseboard's series: `query`,
/// `query_range`, `labels`, `label/<name>/values`, `series`, `metadata` and `status/buildinfo`,
/// by GET or by a form-encoded POST, as Grafana sends both. Answers and errors have Prometheus's
/// exact shapes (`PulseboardPromQL.ResponseJSON`). For admins and instructors, with a user's
/// token (an API token `pbu_…`, or an access token); ingest tokens are refused.
package struct PrometheusController {
    let sources: [any PrometheusSource]
    let engine: QueryEngine

    package init(sources: [any PrometheusSource], engine: QueryEngine = QueryEngine()) {
        self.sources = sources
        self.engine = engine
    }

    /// The Prometheus version whose API and PromQL this follows (Grafana reads it to choose features).
    static let emulatedVersion = "2.42.0"

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        let endpoints: [(String, @Sendable (Parameters, UserClaims) async throws -> String)] = [
            ("query", query), ("query_range", queryRange), ("labels", labels), ("series", series),
            ("metadata", { _, _ in ResponseJSON.success(data: "{}") }),
            ("status/buildinfo", { _, _ in Self.buildInfo }),
        ]
        for (path, handler) in endpoints {
            let respond: @Sendable (Request, AppRequestContext) async throws -> Response = { request, context in
                try await Self.answer { try await handler(try await Parameters(request), try Self.caller(context)) }
            }
            router.get("/prometheus/api/v1/\(path)", use: respond)
            router.post("/prometheus/api/v1/\(path)", use: respond)
        }
        let labelValues: @Sendable (Request, AppRequestContext) async throws -> Response = { request, context in
            try await Self.answer {
                try await values(of: context.parameters.require("name"), try await Parameters(request), try Self.caller(context))
            }
        }
        router.get("/prometheus/api/v1/label/{name}/values", use: labelValues)
        return router
    }

    static var buildInfo: String {
        ResponseJSON.success(
            data: #"{"version":"\#(emulatedVersion)","revision":"pulseboard","branch":"pulseboard","buildUser":"pulseboard","buildDate":"","goVersion":""}"#)
    }

    // MARK: Endpoints

    func query(_ parameters: Parameters, _ caller: UserClaims) async throws -> String {
        let time = try parameters.time("time") ?? Date().millisecondsSince1970
        let result = try await engine.instant(try parameters.required("query"), atMs: time, store: CallerSeriesStore(sources: sources, caller: caller))
        return ResponseJSON.success(result)
    }

    func queryRange(_ parameters: Parameters, _ caller: UserClaims) async throws -> String {
        guard let start = try parameters.time("start") else { throw PromQLError.badData("invalid parameter \"start\": cannot parse \"\" to a valid timestamp") }
        guard let end = try parameters.time("end") else { throw PromQLError.badData("invalid parameter \"end\": cannot parse \"\" to a valid timestamp") }
        guard end >= start else { throw PromQLError.badData("invalid parameter \"end\": end timestamp must not be before start time") }
        guard let step = try parameters.duration("step") else { throw PromQLError.badData("invalid parameter \"step\": cannot parse \"\" to a valid duration") }
        guard step > 0 else {
            throw PromQLError.badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer")
        }
        guard (end - start) / step <= QueryEngine.maxSteps else {
            throw PromQLError.badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
        }
        let result = try await engine.range(
            try parameters.required("query"), startMs: start, endMs: end, stepMs: step, store: CallerSeriesStore(sources: sources, caller: caller))
        return ResponseJSON.success(result)
    }

    func labels(_ parameters: Parameters, _ caller: UserClaims) async throws -> String {
        let names = Set(try await labelSets(parameters, caller, requireMatch: false).flatMap { $0.all.map(\.name) })
        return ResponseJSON.success(data: ResponseJSON.strings(names.sorted()))
    }

    func values(of name: String, _ parameters: Parameters, _ caller: UserClaims) async throws -> String {
        let values = Set(try await labelSets(parameters, caller, requireMatch: false).compactMap { $0[name] })
        return ResponseJSON.success(data: ResponseJSON.strings(values.sorted()))
    }

    func series(_ parameters: Parameters, _ caller: UserClaims) async throws -> String {
        ResponseJSON.success(data: ResponseJSON.metrics(try await labelSets(parameters, caller, requireMatch: true).sorted()))
    }

    /// The label sets of the series that match any `match[]` (all series without one) within
    /// `start`…`end` (all time without them).
    private func labelSets(_ parameters: Parameters, _ caller: UserClaims, requireMatch: Bool) async throws -> [Labels] {
        let selectors = parameters.all("match[]")
        if requireMatch && selectors.isEmpty { throw PromQLError.badData("no match[] parameter provided") }
        var matcherSets: [[LabelMatcher]] = []
        for text in selectors {
            guard case .vectorSelector(let selector) = try Parser.parse(text) else {
                throw PromQLError.badData("invalid parameter \"match[]\": expected a vector selector, got \(text)")
            }
            matcherSets.append(selector.matchers)
        }
        if matcherSets.isEmpty { matcherSets = [[]] }
        let (from, to) = (try parameters.time("start") ?? 0, try parameters.time("end") ?? Int64.max / 2)
        var found = Set<Labels>()
        for matchers in matcherSets {
            for source in sources {
                found.formUnion(try await source.labelSets(matching: matchers, fromMs: from, toMs: to, caller: caller))
            }
        }
        return Array(found)
    }

    // MARK: Access and errors

    /// Admins and instructors, with a user's token; ingest tokens may not read.
    static func caller(_ context: AppRequestContext) throws -> UserClaims {
        switch context.principal {
        case .user(let user) where user.role != .student: return user
        case .user: throw APIError.forbidden("Students cannot query metrics.")
        case .ingest: throw APIError.forbidden("An ingest token may only write; use a user's API token (pbu_…).")
        case nil: throw APIError.unauthorized("Send a user's API token: Authorization: Bearer pbu_… (or as the password of basic auth).")
        }
    }

    /// Prometheus's error shape: 400 bad_data, 422 execution, 503 unavailable; 401 and 403 for
    /// credentials, which Prometheus itself does not check.
    static func answer(_ body: () async throws -> String) async throws -> Response {
        let (status, text): (HTTPResponse.Status, String)
        do {
            (status, text) = (.ok, try await body())
        } catch let error as PromQLError {
            switch error {
            case .badData(let message): (status, text) = (.badRequest, ResponseJSON.error("bad_data", message))
            case .execution(let message): (status, text) = (.unprocessableContent, ResponseJSON.error("execution", message))
            }
        } catch let error as APIError {
            let type = error.status == .serviceUnavailable ? "unavailable" : error.status.code < 500 ? "bad_data" : "internal"
            var response = Response(status: error.status, body: .init(byteBuffer: ByteBuffer(string: ResponseJSON.error(type, error.message))))
            response.headers = error.headers
            response.headers[.contentType] = "application/json"
            return response
        } catch let error as StoreError {
            guard case .unavailable = error else { throw error }
            (status, text) = (.serviceUnavailable, ResponseJSON.error("unavailable", "The database is unavailable."))
        }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// A request's parameters from its query string and, for a form-encoded POST, its body; `match[]`
/// may repeat.
struct Parameters {
    private var pairs: [(String, String)]

    init(_ request: Request) async throws {
        pairs = Self.decode(request.uri.query ?? "")
        if request.method == .post, request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
            pairs += Self.decode(String(decoding: try await request.readBody(upTo: 1 << 20), as: UTF8.self))
        }
    }

    /// `a=1&b=x+y`, decoded as Prometheus (Go's forms) decodes it: `+` is a space in a query
    /// string too, and clients send a literal plus as `%2B`.
    static func decode(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { field in
            let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
    }

    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
    func first(_ name: String) -> String? { pairs.first { $0.0 == name }?.1 }

    func required(_ name: String) throws -> String {
        guard let value = first(name) else { throw PromQLError.badData("invalid parameter \"\(name)\": missing") }
        return value
    }

    /// Unix seconds (with a fraction) or RFC 3339, in milliseconds.
    func time(_ name: String) throws -> Int64? {
        guard let text = first(name), !text.isEmpty else { return nil }
        // Within ±300,000 years, so that no arithmetic on times overflows.
        if let seconds = Double(text), Swift.abs(seconds) < 1e13 { return Int64((seconds * 1000).rounded()) }
        if let date = Timestamp.parse(text) { return date.millisecondsSince1970 }
        throw PromQLError.badData("invalid parameter \"\(name)\": cannot parse \"\(text)\" to a valid timestamp")
    }

    /// Seconds (with a fraction) or a Prometheus duration (`15s`, `1m30s`), in milliseconds.
    func duration(_ name: String) throws -> Int64? {
        guard let text = first(name), !text.isEmpty else { return nil }
        if let seconds = Double(text), Swift.abs(seconds) < 9e9 { return Int64((seconds * 1000).rounded()) }
        if let milliseconds = Parser.duration(text) { return milliseconds }
        throw PromQLError.badData("invalid parameter \"\(name)\": cannot parse \"\(text)\" to a valid duration")
    }
}
