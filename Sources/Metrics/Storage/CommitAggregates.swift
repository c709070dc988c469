/// What one commit changes besides the chunks: per series its last value, and per rollup bucket
/// the count, sum, min and max to merge. Computed from each series' points sorted by time, in one
/// walk per series and rollup (no lookup per point). Both engines compute it the same way and
/// differ only in the SQL that applies it.
package struct CommitAggregates {
    struct SeriesDelta {
        var lastTimestampMs: Int64
        /// Of the points with the newest timestamp, the greatest value (`Chunk.inOrder`'s last).
        var lastValue: Double
    }

    /// By series id.
    let series: [(id: Int64, delta: SeriesDelta)]
    /// Buckets by series id, then start.
    let rollups: [Rollup: [(seriesID: Int64, bucket: Bucket)]]

    /// `points`: per series, sorted by `Chunk.inOrder`, none empty.
    init(_ points: [(seriesID: Int64, points: [Chunk.Point])]) {
        series = points.map { id, points in (id, SeriesDelta(lastTimestampMs: points.last!.timestampMs, lastValue: points.last!.value)) }
        var rollups: [Rollup: [(seriesID: Int64, bucket: Bucket)]] = [:]
        for rollup in Rollup.allCases {
            var buckets: [(seriesID: Int64, bucket: Bucket)] = []
            for (id, points) in points {
                var current = Bucket.empty(startingAt: .min)
                for point in points {
                    let start = point.timestampMs - point.timestampMs % rollup.widthMs
                    if start != current.startMs {
                        if current.count > 0 { buckets.append((id, current)) }
                        current = .empty(startingAt: start)
                    }
                    current.add(point.value)
                }
                if current.count > 0 { buckets.append((id, current)) }
            }
            rollups[rollup] = buckets
        }
        self.rollups = rollups
    }
}
