import Foundation
import PulseboardDatabase

/// How points are cut into chunks (rows of the `chunks` table, bytes in `ChunkCodec`'s format).
/// A chunk holds points of one series from one hour (the compaction window, aligned to the
/// epoch) and at most `maximumPoints` of them, so that a read decodes little beyond its range
/// and retention, which drops whole chunks, keeps at most an hour more than it must.
package struct Chunk: Sendable {
    package typealias Point = (timestampMs: Int64, value: Double)

    static let windowMs: Int64 = 3_600_000
    static let maximumPoints = 4_096

    var startMs: Int64
    var endMs: Int64
    var count: Int
    var bytes: [UInt8]

    /// Points sorted by time, cut at window boundaries and at
    /// `maximumPoints`.
    static func cut(_ sorted: [Point]) -> [Chunk] {
        var chunks: [Chunk] = []
        var start = sorted.startIndex
        while start < sorted.endIndex {
            let window = sorted[start].timestampMs - sorted[start].timestampMs % windowMs
            var end = start + 1
            while end < sorted.endIndex, end - start < maximumPoints, sorted[end].timestampMs < window + windowMs { end += 1 }
            let slice = sorted[start..<end]
            chunks.append(Chunk(startMs: slice.first!.timestampMs, endMs: slice.last!.timestampMs, count: slice.count, bytes: ChunkCodec.encode(slice)))
            start = end
        }
        return chunks
    }

    /// Points of several series in any order, per series sorted by `inOrder`, by series id.
    static func sorted(_ points: [Int64: [Point]]) -> [(seriesID: Int64, points: [Point])] {
        points.sorted { $0.key < $1.key }.map { ($0.key, $0.value.sorted(by: inOrder)) }
    }

    /// The chunks of several series' sorted points.
    static func cut(_ series: [(seriesID: Int64, points: [Point])]) -> [(seriesID: Int64, chunk: Chunk)] {
        series.flatMap { id, points in cut(points).map { (id, $0) } }
    }

    /// The points of these chunks, in no particular order.
    static func points(of chunks: some Collection<StoredChunk>) throws -> [Point] {
        try chunks.flatMap { try ChunkCodec.decode($0.data) }
    }

    static func placeholders(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }

    /// The order of a read's answer: by time, and equal timestamps by value, so that an answer
    /// does not depend on how the points happen to be cut into chunks.
    static func inOrder(_ a: Point, _ b: Point) -> Bool {
        a.timestampMs != b.timestampMs ? a.timestampMs < b.timestampMs : a.value < b.value
    }

    func insert(seriesID: Int64) -> SQLStatement {
        SQLStatement(
            "INSERT INTO chunks (series_id, start_ts, end_ts, count, data) VALUES (?, ?, ?, ?, ?)",
            .integer(seriesID), .integer(startMs), .integer(endMs), .integer(Int64(count)), .blob(Data(bytes)))
    }
}

/// A stored chunk as a read finds it. Reads take the bytes in the same statement as the list:
/// a compaction may replace chunks between two statements, and bytes fetched by id afterwards
/// would then be missing (a history answer without those points).
struct StoredChunk: Decodable {
    var seriesId: Int64
    var id: Int64
    var startTs: Int64
    var endTs: Int64
    var count: Int64
    var data: Data

    func lies(within fromMs: Int64, _ toMs: Int64) -> Bool { fromMs <= startTs && endTs <= toMs }
}
