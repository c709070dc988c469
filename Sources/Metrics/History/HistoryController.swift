import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// `GET /api/v1/metrics` (history of one series) and `GET /api/v1/series` (what exists).
package struct HistoryController {
    static let defaultRange: Int64 = 15 * 60 * 1000
    let store: any MetricsStore

    struct PointView: Encodable {
        var timestamp: String
        var value: Double
    }

    struct BucketView: Encodable {
        var timestamp: String
        var avg: Double
        var min: Double
        var max: Double
        var count: Int64
    }

    struct HistoryView: Encodable {
        var name: String
        var tags: [String: String]
        var from: String
        var to: String
        var downsampled: Bool
        var bucketSeconds: Double?
        var points: [PointView]?
        var buckets: [BucketView]?
    }

    struct SeriesView: Encodable {
        var name: String
        var tags: [String: String]
        var lastTimestamp: String?
        var lastValue: Double?
    }

    struct SeriesList: Encodable {
        var series: [SeriesView]
    }

    package init(store: any MetricsStore) {
        self.store = store
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/metrics") { request, context -> Response in
            _ = try context.requireUser([.admin, .instructor])
            let query = request.uri.queryParameters
            guard let name = query.get("name"), !name.isEmpty else {
                throw APIError.badRequest("The query parameter 'name' is required.", details: ["field": .string("name")])
            }
            let nowMs = Date().millisecondsSince1970
            let toMs = try QueryParameter.time(query.get("to"), field: "to") ?? nowMs
            let fromMs = try QueryParameter.time(query.get("from"), field: "from") ?? (toMs - Self.defaultRange)
            guard fromMs <= toMs else {
                throw APIError.badRequest("'from' is after 'to'.", details: ["field": .string("from")])
            }
            let maxPoints = try QueryParameter.integer(query.get("maxPoints"), field: "maxPoints", range: 1...10_000) ?? 1000
            let forceBuckets: Bool
            switch query.get("aggregation") ?? "auto" {
            case "auto": forceBuckets = false
            case "buckets": forceBuckets = true
            default:
                throw APIError.badRequest("'aggregation' is auto or buckets.", details: ["field": .string("aggregation")])
            }
            let tags = try Self.tags(query.get("tags"))
            let answer = try await HistoryQuery(store: store).run(
                series: SeriesKey(name: name, tags: tags),
                fromMs: fromMs,
                toMs: toMs,
                maxPoints: maxPoints,
                forceBuckets: forceBuckets
            )
            var view = HistoryView(
                name: name,
                tags: tags,
                from: Timestamp.format(milliseconds: fromMs),
                to: Timestamp.format(milliseconds: toMs),
                downsampled: false
            )
            switch answer {
            case .points(let points):
                view.points = points.map { PointView(timestamp: Timestamp.format(milliseconds: $0.timestampMs), value: $0.value) }
            case .buckets(let width, let buckets):
                view.downsampled = true
                view.bucketSeconds = Double(width) / 1000
                view.buckets = buckets.map {
                    BucketView(timestamp: Timestamp.format(milliseconds: $0.startMs), avg: $0.average, min: $0.min, max: $0.max, count: $0.count)
                }
            }
            return try JSONResponse(view).response
        }
        router.get("/series") { _, context -> Response in
            _ = try context.requireUser([.admin, .instructor])
            let series = try await store.listSeries().map {
                SeriesView(
                    name: $0.series.name,
                    tags: $0.series.tags,
                    lastTimestamp: $0.lastTimestampMs.map { Timestamp.format(milliseconds: $0) },
                    lastValue: $0.lastValue
                )
            }
            return try JSONResponse(SeriesList(series: series)).response
        }
        return router
    }

    /// `tags=host=a,region=eu` → `["host": "a", "region": "eu"]`.
    static func tags(_ text: String?) throws -> [String: String] {
        guard let text, !text.isEmpty else { return [:] }
        var tags: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw APIError.badRequest("'tags' is a list of key=value pairs separated by commas.", details: ["field": .string("tags")])
            }
            tags[String(parts[0])] = String(parts[1])
        }
        return tags
    }
}
