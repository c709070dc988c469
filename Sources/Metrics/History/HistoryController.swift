import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// `GET /api/v1/metrics` (history of the series of one name) and `GET /api/v1/series` (what exists).
package struct HistoryController {
    static let defaultRange: Int64 = 15 * 60 * 1000
    /// Series one query answers separately, and combines with `aggregate`.
    static let maxSeries = 100
    static let maxCombinedSeries = 1_000
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

    struct CombinedBucketView: Encodable {
        var timestamp: String
        var value: Double
        var count: Int64
        var series: Int
    }

    /// One series of the name, or (with `aggregate`) one group of them combined.
    struct SeriesHistoryView: Encodable {
        var tags: [String: String]
        var downsampled: Bool
        var bucketSeconds: Double?
        var points: [PointView]?
        var buckets: [BucketView]?
        /// With `aggregate`: the number of series combined, and the combined buckets.
        var seriesCount: Int?
        var values: [CombinedBucketView]?
    }

    struct HistoryView: Encodable {
        var name: String
        var tags: [String: String]
        var groupBy: [String]?
        var aggregate: String?
        var from: String
        var to: String
        var series: [SeriesHistoryView]
    }

    struct SeriesView: Encodable {
        var name: String
        var tags: [String: String]
        var lastTimestamp: String?
        var lastValue: Double?
        var storedPoints: Int64
        /// The bytes of its compressed chunks (the database adds its own pages and indexes).
        var storedBytes: Int64
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
            let groupBy = try Self.groupBy(query.get("groupBy"))
            let aggregate = try query.get("aggregate").map { text in
                guard let aggregate = HistoryQuery.Aggregate(rawValue: text) else {
                    throw APIError.badRequest("'aggregate' is avg, sum, min or max.", details: ["field": .string("aggregate")])
                }
                return aggregate
            }
            let matching = try await store.series(named: name, including: tags)
            let limit = aggregate == nil && groupBy == nil ? Self.maxSeries : Self.maxCombinedSeries
            guard matching.count <= limit else {
                throw APIError.unprocessable(
                    "\(matching.count) series are named '\(name)'\(tags.isEmpty ? "" : " with these tags"); one query answers at most \(limit): narrow it with 'tags'\(aggregate == nil ? " or combine them with 'aggregate'" : "").",
                    code: "too_many_series", details: ["series": .int(matching.count), "limit": .int(limit)])
            }
            let history = HistoryQuery(store: store)
            var series: [SeriesHistoryView] = []
            if aggregate != nil || groupBy != nil {
                // Groups by the values of the `groupBy` tags (all series in one group without it).
                let groups = Dictionary(grouping: matching) { match in (groupBy ?? []).reduce(into: [String: String]()) { $0[$1] = match.key.tags[$1] } }
                let ordered = groups.map { (tags: $0.key, members: $0.value, order: SeriesKey(name: name, tags: $0.key).canonicalTags) }.sorted {
                    $0.order < $1.order
                }
                for (groupTags, members, _) in ordered {
                    let (width, buckets) = try await history.combine(
                        seriesIDs: members.map(\.id), fromMs: fromMs, toMs: toMs, maxBuckets: maxPoints, aggregate: aggregate ?? .avg)
                    series.append(
                        SeriesHistoryView(
                            tags: groupTags, downsampled: true, bucketSeconds: Double(width) / 1000, seriesCount: members.count,
                            values: buckets.map {
                                CombinedBucketView(timestamp: Timestamp.format(milliseconds: $0.startMs), value: $0.value, count: $0.count, series: $0.series)
                            }))
                }
            } else {
                for match in matching {
                    let answer = try await history.run(seriesID: match.id, fromMs: fromMs, toMs: toMs, maxPoints: maxPoints, forceBuckets: forceBuckets)
                    series.append(Self.view(answer, tags: match.key.tags))
                }
            }
            let view = HistoryView(
                name: name, tags: tags, groupBy: groupBy, aggregate: aggregate.map { $0.rawValue } ?? (groupBy == nil ? nil : "avg"),
                from: Timestamp.format(milliseconds: fromMs), to: Timestamp.format(milliseconds: toMs), series: series)
            return try JSONResponse(view).response
        }
        router.get("/series") { _, context -> Response in
            _ = try context.requireUser([.admin, .instructor])
            let series = try await store.listSeries().map {
                SeriesView(
                    name: $0.series.name,
                    tags: $0.series.tags,
                    lastTimestamp: $0.lastTimestampMs.map { Timestamp.format(milliseconds: $0) },
                    lastValue: $0.lastValue,
                    storedPoints: $0.stored.points,
                    storedBytes: $0.stored.bytes
                )
            }
            return try JSONResponse(SeriesList(series: series)).response
        }
        return router
    }

    static func view(_ answer: HistoryQuery.Answer, tags: [String: String]) -> SeriesHistoryView {
        switch answer {
        case .points(let points):
            return SeriesHistoryView(
                tags: tags, downsampled: false,
                points: points.map { PointView(timestamp: Timestamp.format(milliseconds: $0.timestampMs), value: $0.value) })
        case .buckets(let width, let buckets):
            return SeriesHistoryView(
                tags: tags, downsampled: true, bucketSeconds: Double(width) / 1000,
                buckets: buckets.map {
                    BucketView(timestamp: Timestamp.format(milliseconds: $0.startMs), avg: $0.average, min: $0.min, max: $0.max, count: $0.count)
                })
        }
    }

    /// `groupBy=host,region` → `["host", "region"]`.
    static func groupBy(_ text: String?) throws -> [String]? {
        guard let text else { return nil }
        let keys = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !keys.isEmpty, keys.allSatisfy({ !$0.isEmpty }) else {
            throw APIError.badRequest("'groupBy' is a list of tag names separated by commas.", details: ["field": .string("groupBy")])
        }
        return keys
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
