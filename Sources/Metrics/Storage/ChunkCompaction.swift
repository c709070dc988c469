import Foundation
import PulseboardDatabase
import PulseboardKernel

/// Rewriting chunks: the compactor merges the small chunks that commits write (one per series
/// per commit), and the migration from the `points` table of earlier versions encodes its rows.
/// Each rewrite is one transaction that deletes exactly the rows it read and inserts their
/// points as new chunks, so a `kill -9` at any moment leaves either the old rows or the new
/// ones, and when another instance rewrote the same rows meanwhile the delete finds fewer rows
/// than were read and the transaction is rolled back (`SQLStatement.expecting(rows:)`).
extension MetricsStore {
    /// One compaction pass: per series and window, the chunks of fewer than `Chunk.maximumPoints`
    /// points whose newest point is older than `closedBefore` are merged, when there are two or
    /// more. Late points make new small chunks in old windows; a later pass merges them too.
    /// Answers how many chunks were merged away.
    @discardableResult
    package func compactChunks(closedBefore: Date) async throws -> Int {
        let closed = closedBefore.millisecondsSince1970
        let small = Int64(Chunk.maximumPoints)
        let windows = try await database.select(
            SQLStatement(
                """
                SELECT series_id, (start_ts / ?) * ? AS window_start FROM chunks WHERE count < ? AND end_ts < ?
                GROUP BY series_id, window_start HAVING COUNT(*) > 1 ORDER BY series_id, window_start
                """, .integer(Chunk.windowMs), .integer(Chunk.windowMs), .integer(small), .integer(closed)))
        var merged = 0
        for window in windows {
            guard let seriesID = window.first?.int, let start = window.last?.int else { throw UnexpectedRow(table: "chunk windows", row: window) }
            let chunks = try await database.select(
                SQLStatement(
                    "SELECT series_id, id, start_ts, end_ts, count, data FROM chunks WHERE series_id = ? AND start_ts >= ? AND start_ts < ? AND count < ? AND end_ts < ?",
                    .integer(seriesID), .integer(start), .integer(start + Chunk.windowMs), .integer(small), .integer(closed)),
                as: StoredChunk.self)
            guard chunks.count > 1 else { continue }
            let points = try Chunk.points(of: chunks).sorted(by: Chunk.inOrder)
            let ids = chunks.map { SQLValue.integer($0.id) }
            let replaced = try await Chunk.rewrite(
                SQLStatement("DELETE FROM chunks WHERE id IN (\(Chunk.placeholders(ids.count))) RETURNING id", arguments: ids).expecting(rows: chunks.count),
                as: Chunk.cut(points), seriesID: seriesID, in: database)
            if replaced { merged += chunks.count }
        }
        return merged
    }

}

extension Chunk {
    /// Runs `delete` and inserts `chunks` in one transaction; false when another writer changed
    /// the rows meanwhile (nothing is written then).
    static func rewrite(_ delete: SQLStatement, as chunks: [Chunk], seriesID: Int64, in database: any Database) async throws -> Bool {
        do {
            try await database.transaction([delete] + chunks.map { $0.insert(seriesID: seriesID) })
            return true
        } catch StoreError.conflict {
            return false
        }
    }
}

/// Migration 12: the rows of the `points` table (versions before the chunk store) encoded as
/// chunks, a day of one series per transaction, oldest first, until the table is empty (the
/// migration's statement then drops it). Interrupted, the next start goes on where it stopped.
package enum PointsTableConversion {
    package static func run(in database: any Database) async throws {
        let day: Int64 = 86_400_000
        while let first = try await database.select(SQLStatement("SELECT series_id, ts FROM points ORDER BY series_id, ts LIMIT 1")).first {
            guard let seriesID = first.first?.int, let ts = first.last?.int else { throw UnexpectedRow(table: "points", row: first) }
            let range: [SQLValue] = [.integer(seriesID), .integer(ts - ts % day), .integer(ts - ts % day + day)]
            let points = try await database.select(
                SQLStatement("SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts < ?", arguments: range)
            ).map { row -> Chunk.Point in
                guard let ts = row.first?.int, let value = row.last?.double else { throw UnexpectedRow(table: "points", row: row) }
                return (ts, value)
            }
            _ = try await Chunk.rewrite(
                SQLStatement("DELETE FROM points WHERE series_id = ? AND ts >= ? AND ts < ? RETURNING ts", arguments: range).expecting(rows: points.count),
                as: Chunk.cut(points.sorted(by: Chunk.inOrder)), seriesID: seriesID, in: database)
        }
    }
}
