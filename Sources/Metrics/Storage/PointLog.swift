import Foundation

/// A commit as SQLite's point log keeps it until the fold (`SQLiteMetricsStore`): per series its
/// id, then its points as a chunk (`ChunkCodec`) prefixed by the chunk's length, both varints.
enum PointLog {
    static func encode(_ series: [(seriesID: Int64, points: [Chunk.Point])]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (id, points) in series {
            let chunk = ChunkCodec.encode(points)
            ChunkCodec.appendVarint(UInt64(bitPattern: id), to: &bytes)
            ChunkCodec.appendVarint(UInt64(chunk.count), to: &bytes)
            bytes += chunk
        }
        return bytes
    }

    static func decode(_ data: Data) throws -> [(seriesID: Int64, points: [Chunk.Point])] {
        let bytes = [UInt8](data)
        var series: [(seriesID: Int64, points: [Chunk.Point])] = []
        var offset = 0
        while offset < bytes.count {
            let id = Int64(bitPattern: try ChunkCodec.readVarint(bytes, at: &offset))
            let count = Int(clamping: try ChunkCodec.readVarint(bytes, at: &offset))
            guard count <= bytes.count - offset else { throw ChunkCodec.Unreadable(reason: "a point log entry is cut short") }
            series.append((id, try ChunkCodec.decode(bytes[offset..<offset + count])))
            offset += count
        }
        return series
    }
}
