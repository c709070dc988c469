import Foundation
import HummingbirdTesting
import Testing

@testable import PulseboardKernel
@testable import PulseboardMetrics

@Suite("History queries", .throwawayPostgres)
struct HistoryTests {
    struct History: Decodable {
        struct Point: Decodable {
            var timestamp: String
            var value: Double
        }
        struct Bucket: Decodable {
            var timestamp: String
            var avg: Double
            var min: Double
            var max: Double
            var count: Int
        }
        var tags: [String: String]
        var downsampled: Bool
        var bucketSeconds: Double?
        var points: [Point]?
        var buckets: [Bucket]?
    }

    /// What `GET /api/v1/metrics` answers: the history of every series of the name.
    struct Answer: Decodable {
        var series: [History]
        /// The history, when exactly one series answered.
        var only: History? { series.count == 1 ? series[0] : nil }
    }

    /// 120 points, one a second from 2026-01-01T00:00:00Z, value = the second (0…119).
    static let twoMinutes =
        "["
        + (0..<120).map {
            #"{"name":"ramp","value":\#($0),"timestamp":"2026-01-01T00:\#(String(format: "%02d", $0 / 60)):\#(String(format: "%02d", $0 % 60))Z"}"#
        }.joined(separator: ",") + "]"

    @Test(arguments: TestEngine.all) func rawPointsWhenTheRangeFits(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            #expect(try await client.ingest(Self.twoMinutes, token: admin).status == .ok)
            let response = try await client.request(
                .get, "/api/v1/metrics?name=ramp&from=2026-01-01T00:00:10Z&to=2026-01-01T00:00:19Z&maxPoints=10", token: admin)
            let history = try #require(try response.decode(Answer.self).only)
            #expect(!history.downsampled)
            #expect(history.points?.map(\.value) == (10...19).map(Double.init))
            #expect(history.points?.first?.timestamp == "2026-01-01T00:00:10.000Z")
        }
    }

    @Test(arguments: TestEngine.all) func exactBucketsWhenTheRangeHoldsMore(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            #expect(try await client.ingest(Self.twoMinutes, token: admin).status == .ok)
            // 120 points into at most 4 buckets: 30 s buckets, aligned to the epoch.
            let response = try await client.request(
                .get, "/api/v1/metrics?name=ramp&from=2026-01-01T00:00:00Z&to=2026-01-01T00:01:59Z&maxPoints=4", token: admin)
            let history = try #require(try response.decode(Answer.self).only)
            #expect(history.downsampled)
            #expect(history.bucketSeconds == 30)
            let buckets = try #require(history.buckets)
            #expect(
                buckets.map(\.timestamp) == ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:30.000Z", "2026-01-01T00:01:00.000Z", "2026-01-01T00:01:30.000Z"])
            #expect(buckets.map(\.count) == [30, 30, 30, 30])
            #expect(buckets.map(\.min) == [0, 30, 60, 90])
            #expect(buckets.map(\.max) == [29, 59, 89, 119])
            #expect(buckets.map(\.avg) == [14.5, 44.5, 74.5, 104.5])

            // One-minute buckets come from the minute rollup and agree with the raw points.
            let minutes = try #require(
                try await client.request(
                    .get, "/api/v1/metrics?name=ramp&from=2026-01-01T00:00:00Z&to=2026-01-01T00:01:59Z&maxPoints=2", token: admin
                ).decode(Answer.self).only)
            #expect(minutes.bucketSeconds == 60)
            #expect(minutes.buckets?.map(\.count) == [60, 60])
            #expect(minutes.buckets?.map(\.avg) == [29.5, 89.5])
            #expect(minutes.buckets?.map(\.min) == [0, 60])
            #expect(minutes.buckets?.map(\.max) == [59, 119])
        }
    }

    @Test(arguments: TestEngine.all) func rollupsAgreeWithRawPointsAndCountsAreExact(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { _, parts in
            // Three hours of points every 7 s, so minute and hour edges fall mid-bucket.
            let start: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z
            let points = stride(from: Int64(0), to: 3 * 3_600_000, by: 7000).map {
                MetricPoint(series: SeriesKey(name: "wave"), timestampMs: start + $0, value: Double($0 % 13_000) / 100)
            }
            _ = try await parts.metrics.commit([IngestBatch(points: points)], now: Date())
            let id = try #require(try await parts.metrics.seriesID(SeriesKey(name: "wave")))
            for width: Int64 in [60_000, 3_600_000] {
                let raw = try await parts.metrics.buckets(seriesID: id, fromMs: start, toMs: start + 3 * 3_600_000, widthMs: width, source: nil)
                for rollup in Rollup.allCases where width % rollup.widthMs == 0 {
                    let rolled = try await parts.metrics.buckets(seriesID: id, fromMs: start, toMs: start + 3 * 3_600_000, widthMs: width, source: rollup)
                    #expect(rolled.map(\.count) == raw.map(\.count))
                    #expect(rolled.map(\.min) == raw.map(\.min))
                    #expect(rolled.map(\.max) == raw.map(\.max))
                    #expect(zip(rolled, raw).allSatisfy { abs($0.sum - $1.sum) < 1e-6 })
                }
            }
            // A range with ragged edges: exactly as many points as the raw count, so `maxPoints`
            // equal to it answers raw points and one less answers buckets.
            let from = start + 1_234_567
            let to = start + 2 * 3_600_000 + 2_345_678
            let exact = Int(try await parts.metrics.countPoints(seriesID: id, fromMs: from, toMs: to))
            let query = HistoryQuery(store: parts.metrics)
            let fits = try await query.run(seriesID: id, fromMs: from, toMs: to, maxPoints: exact, forceBuckets: false)
            guard case .points(let rawPoints) = fits else { Issue.record("expected raw points"); return }
            #expect(rawPoints.count == exact)
            let over = try await query.run(seriesID: id, fromMs: from, toMs: to, maxPoints: exact - 1, forceBuckets: false)
            guard case .buckets = over else { Issue.record("expected buckets"); return }
        }
    }

    /// A query by name answers every series of it (the README's example posts `sensor.temp` with a
    /// tag and queries the name), `tags` filters by a subset, `aggregate`/`groupBy` combine.
    @Test(arguments: TestEngine.all) func aNameFindsEverySeriesOfItAndAggregatesCombineThem(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let series: [(tags: String, values: [Double])] = [
                (#"{"room":"lab","floor":"1"}"#, [20, 22]), (#"{"room":"office","floor":"1"}"#, [30, 30]), (#"{"room":"hall","floor":"2"}"#, [10, 14]),
                ("{}", [5, 5]),
            ]
            let body = series.flatMap { tags, values in
                values.enumerated().map { #"{"name":"sensor.temp","value":\#($1),"timestamp":"2026-01-01T00:00:0\#($0)Z","tags":\#(tags)}"# }
            }
            #expect(try await client.ingest("[" + body.joined(separator: ",") + "]", token: admin).status == .ok)
            let range = "from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:59Z"

            let all = try await client.request(.get, "/api/v1/metrics?name=sensor.temp&\(range)", token: admin).decode(Answer.self)
            // In the order of their tags' canonical text (`{}` last).
            #expect(all.series.map(\.tags) == [["floor": "1", "room": "lab"], ["floor": "1", "room": "office"], ["floor": "2", "room": "hall"], [:]])
            #expect(all.series[0].points?.map(\.value) == [20, 22])
            let firstFloor = try await client.request(.get, "/api/v1/metrics?name=sensor.temp&tags=floor=1&\(range)", token: admin).decode(Answer.self)
            #expect(firstFloor.series.map { $0.tags["room"] } == ["lab", "office"])

            struct Combined: Decodable {
                struct Group: Decodable {
                    struct Value: Decodable {
                        var value: Double
                        var count: Int
                        var series: Int
                    }
                    var tags: [String: String]
                    var seriesCount: Int
                    var values: [Value]
                }
                var series: [Group]
            }
            // One bucket over the whole minute; per floor: avg of all points, sum of the series' means.
            let uri = "/api/v1/metrics?name=sensor.temp&tags=floor&\(range)&maxPoints=1&groupBy=floor"
            #expect(try await client.request(.get, uri, token: admin).status == .badRequest)  // "floor" alone is no tag filter
            let average = try await client.request(.get, "/api/v1/metrics?name=sensor.temp&\(range)&maxPoints=1&groupBy=floor", token: admin).decode(
                Combined.self)
            #expect(average.series.map(\.tags) == [["floor": "1"], ["floor": "2"], [:]])
            #expect(average.series.map(\.seriesCount) == [2, 1, 1])
            #expect(average.series.map { $0.values.map(\.value) } == [[25.5], [12], [5]])
            let sum = try await client.request(.get, "/api/v1/metrics?name=sensor.temp&\(range)&maxPoints=1&aggregate=sum&tags=floor=1", token: admin)
                .decode(Combined.self)
            #expect(sum.series.map { $0.values.map(\.value) } == [[51]])
            #expect(sum.series.first?.values.first.map { ($0.count, $0.series) } ?? (0, 0) == (4, 2))
            let maximum = try await client.request(.get, "/api/v1/metrics?name=sensor.temp&\(range)&aggregate=max&maxPoints=1", token: admin).decode(
                Combined.self)
            #expect(maximum.series.map { $0.values.map(\.value) } == [[30]])

            for bad in ["aggregate=median", "groupBy=", "groupBy=floor,,room"] {
                let response = try await client.request(.get, "/api/v1/metrics?name=sensor.temp&\(bad)", token: admin)
                #expect(response.status == .badRequest, "\(bad)")
            }
            // More series than one answer holds: a clear 422, unless they are combined.
            let many = (0..<101).map { #"{"name":"fleet.load","value":1,"timestamp":"2026-01-01T00:00:00Z","tags":{"host":"h\#($0)"}}"# }
            #expect(try await client.ingest("[" + many.joined(separator: ",") + "]", token: admin).status == .ok)
            let tooMany = try await client.request(.get, "/api/v1/metrics?name=fleet.load&\(range)", token: admin)
            #expect(tooMany.status == .unprocessableContent)
            #expect(tooMany.error?.code == "too_many_series")
            let fleet = try await client.request(.get, "/api/v1/metrics?name=fleet.load&\(range)&aggregate=sum&maxPoints=1", token: admin).decode(Combined.self)
            #expect(fleet.series.first?.values.first?.value == 101)
        }
    }

    @Test(arguments: TestEngine.all) func badQueriesAre400AndUnknownSeriesIsEmpty(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            let bad = [
                "/api/v1/metrics",
                "/api/v1/metrics?name=x&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
                "/api/v1/metrics?name=x&from=yesterday",
                "/api/v1/metrics?name=x&aggregation=median",
                "/api/v1/metrics?name=x&maxPoints=0",
                "/api/v1/metrics?name=x&tags=novalue",
            ]
            for uri in bad {
                let response = try await client.request(.get, uri, token: admin)
                #expect(response.status == .badRequest, "\(uri)")
                #expect(response.error?.code == "bad_request")
            }
            let unknown = try await client.request(.get, "/api/v1/metrics?name=nothing-here", token: admin).decode(Answer.self)
            #expect(unknown.series.isEmpty)
        }
    }

    @Test(arguments: TestEngine.all) func seriesListShowsLastValues(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let admin = try await client.login().accessToken
            #expect(try await client.ingest(Self.twoMinutes, token: admin).status == .ok)
            let series = try await client.request(.get, "/api/v1/series", token: admin)
            #expect(series.text.contains(#"{"lastTimestamp":"2026-01-01T00:01:59.000Z","lastValue":119,"name":"ramp","#))
            // What the series takes: 120 points, a second apart, in a couple of bytes each.
            struct Stored: Decodable {
                struct Series: Decodable {
                    var name: String
                    var storedPoints: Int
                    var storedBytes: Int
                }
                var series: [Series]
            }
            let ramp = try #require(try series.decode(Stored.self).series.first { $0.name == "ramp" })
            #expect(ramp.storedPoints == 120)
            #expect(ramp.storedBytes > 0 && ramp.storedBytes <= 2 * 120, "\(ramp.storedBytes) bytes")
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            #expect(try await client.request(.get, "/api/v1/series", token: student).status == .forbidden)
        }
    }

    @Test func bucketWidthsAreNiceAndBounded() {
        #expect(HistoryQuery.bucketWidth(fromMs: 0, toMs: 119_999, maxBuckets: 4) == 30_000)
        #expect(HistoryQuery.bucketWidth(fromMs: 0, toMs: 3_600_000 * 24 * 7, maxBuckets: 1000) == 900_000)
        let yearWidth = HistoryQuery.bucketWidth(fromMs: 0, toMs: 365 * 86_400_000, maxBuckets: 100)
        #expect(yearWidth % 86_400_000 == 0)
        #expect(365 * 86_400_000 / yearWidth < 100)
    }

    @Test func timestampsFormatWithMilliseconds() throws {
        #expect(Timestamp.format(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(milliseconds: 1_767_225_600_123) == "2026-01-01T00:00:00.123Z")
        #expect(Timestamp.format(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.format(milliseconds: 253_402_300_800_000) == "10000-01-01T00:00:00.000Z")
        // Formatting agrees with Foundation's formatter (on whole seconds: Foundation keeps a date
        // as a Double and its milliseconds drift in later centuries) and parses back, across the years.
        let foundation = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        for _ in 0..<1_000 {
            let ms = Int64.random(in: 0..<253_402_300_800_000)
            #expect(Timestamp.format(milliseconds: ms / 1000 * 1000) == foundation.format(Date(millisecondsSince1970: ms / 1000 * 1000)))
            #expect(Timestamp.parseMilliseconds(Timestamp.format(milliseconds: ms)) == ms)
        }
        #expect(Timestamp.parse("2026-01-01T01:00:00+01:00")?.millisecondsSince1970 == 1_767_225_600_000)
        #expect(Timestamp.parse("2026-01-01T00:00:00.5Z")?.millisecondsSince1970 == 1_767_225_600_500)
        #expect(Timestamp.parse("not a time") == nil)
        // The fast path agrees with Foundation's parser.
        let formats = [
            "2026-11-22T12:34:56Z", "2026-11-22T12:34:56.7Z", "2024-02-29T23:59:59.999999Z", "1999-12-31T23:00:00-05:30", "2026-01-01T00:00:00.123+01:00",
        ]
        for text in formats {
            let fast = try #require(Timestamp.parseMilliseconds(text), "\(text)")
            let slow =
                (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))) ?? (try? Date(text, strategy: Date.ISO8601FormatStyle()))
            #expect(fast == slow?.millisecondsSince1970, "\(text)")
        }
        for text in [
            "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00Zjunk",
            "2026-01-01T00:00:00.5", "2026-01-01T00:00:00+1:00",
        ] {
            #expect(Timestamp.parseMilliseconds(text) == nil, "\(text)")
        }
        // Mangled input never crashes the parser, and what it accepts Foundation reads alike (to
        // the millisecond: Foundation rounds long fractions, we truncate; before 1970 Foundation's
        // calendar is not the proleptic Gregorian one of ISO 8601).
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-:+.TZtz ")
        for _ in 0..<5000 {
            var characters = Array(formats.randomElement(using: &generator)!)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<characters.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: characters[at] = alphabet.randomElement(using: &generator)!
                case 1: characters.remove(at: at)
                default: characters.insert(alphabet.randomElement(using: &generator)!, at: at)
                }
                if characters.isEmpty { break }
            }
            let text = String(characters)
            if let fast = Timestamp.parseMilliseconds(text) {
                let slow =
                    (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
                    ?? (try? Date(text, strategy: Date.ISO8601FormatStyle()))
                if let slow, fast >= 0 {
                    #expect(abs(fast - slow.millisecondsSince1970) <= 1, "\(text)")
                }
            }
        }
    }
}
