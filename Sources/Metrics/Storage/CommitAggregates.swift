/// What one commit changes besides the points themselves: per series its last value, and per rollup bucket the count, sum, min and max to merge. Both engines compute it the
/// same way and differ only in the SQL that applies it.
package struct CommitAggregates {
    struct SeriesDelta {
        var lastTimestampMs: Int64 = .min
        var lastValue: Double = 0
    }

    struct BucketKey: Hashable {
        var seriesID: Int64
        var startMs: Int64
    }

    var series: [Int64: SeriesDelta] = [:]
    var rollups: [Rollup: [BucketKey: Bucket]] = [:]

    mutating func add(seriesID: Int64, timestampMs: Int64, value: Double) {
        if timestampMs >= series[seriesID, default: SeriesDelta()].lastTimestampMs {
            series[seriesID] = SeriesDelta(lastTimestampMs: timestampMs, lastValue: value)
        }
        for rollup in Rollup.allCases {
            let start = timestampMs - timestampMs % rollup.widthMs
            let key = BucketKey(seriesID: seriesID, startMs: start)
            rollups[rollup, default: [:]][key, default: Bucket.empty(startingAt: start)].add(value)
        }
    }
}
