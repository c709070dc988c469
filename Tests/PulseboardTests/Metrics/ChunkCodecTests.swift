import Foundation
import Testing

@testable import PulseboardMetrics

@Suite("Chunk codec")
struct ChunkCodecTests {
    typealias Point = (timestampMs: Int64, value: Double)

    /// Bit-exact equality: NaN and -0.0 must come back as they went in.
    static func same(_ a: [Point], _ b: [Point]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.timestampMs == $1.timestampMs && $0.value.bitPattern == $1.value.bitPattern }
    }

    @Test func emptyAndSinglePointChunksComeBack() throws {
        #expect(try ChunkCodec.decode(ChunkCodec.encode([Point]())).isEmpty)
        let one: [Point] = [(1_764_800_000_123, 21.5)]
        #expect(Self.same(try ChunkCodec.decode(ChunkCodec.encode(one)), one))
    }

    /// Regular, jittered, late, repeated and extreme timestamps; random, repeated and special
    /// values: every point comes back bit for bit, in the order it was written.
    @Test func everyKindOfSeriesComesBackBitForBit() throws {
        var generator = SystemRandomNumberGenerator()
        let specials: [Double] = [0, -0.0, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -1e-300, 1e300]
        for round in 0..<300 {
            let count = Int.random(in: 1...2_000, using: &generator)
            var time = Int64.random(in: 0...1_800_000_000_000, using: &generator)
            var value = Double.random(in: -1e6...1e6, using: &generator)
            var points: [Point] = []
            for _ in 0..<count {
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: time -= Int64.random(in: 0...3_600_000, using: &generator)  // late
                case 1: break  // the same timestamp again
                case 2: time += Int64.random(in: 0...Int64(UInt32.max) * 4, using: &generator)  // a long gap
                default: time += 1_000 + Int64.random(in: -3...3, using: &generator)
                }
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: value = specials.randomElement(using: &generator)!
                case 1: value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
                case 2, 3: break  // unchanged
                default: value = (value.isFinite ? value : 0) + Double(Int.random(in: -50...50, using: &generator)) / 100
                }
                points.append((time, value))
            }
            if round == 0 { points += [(Int64.min, 1), (Int64.max, 2), (0, 3)] }
            #expect(Self.same(try ChunkCodec.decode(ChunkCodec.encode(points)), points))
        }
    }

    /// Values with at most 0...6 decimals (stored as scaled integers), also negative, large and
    /// mixed in places, and the ones that must fall back to XOR: each comes back exactly.
    @Test func decimalValuesComeBackExactly() throws {
        for places in 0...7 {
            let scale = pow(10, Double(places))
            let points: [Point] = (0..<1_000).map { index in
                (Int64(index) * 1_000, Double(Int64.random(in: -9_000_000_000...9_000_000_000)) / scale)
            }
            #expect(Self.same(try ChunkCodec.decode(ChunkCodec.encode(points)), points))
        }
        let edges: [[Double]] = [[21.5, 21.25, 0.001, -7], [1e15, -1e15, 0.5], [0.1, 1.0 / 3], [5, -0.0], [1, .nan], [8_999_999_999_999_999]]
        for values in edges {
            let points: [Point] = values.enumerated().map { (Int64($0.offset), $0.element) }
            #expect(Self.same(try ChunkCodec.decode(ChunkCodec.encode(points)), points))
        }
    }

    /// A point a second with a steady value takes about a quarter of a byte, a random walk with
    /// two decimals about 1.25 bytes (XOR would take about 7), against 16 for a raw point.
    @Test func regularPointsTakeFewBytes() {
        let start: Int64 = 1_764_800_000_000
        let steady: [Point] = (0..<3_600).map { (start + Int64($0) * 1_000, 42) }
        #expect(Double(ChunkCodec.encode(steady).count) / 3_600 < 0.3)
        var value = 50.0
        let walk: [Point] = (0..<3_600).map { index in
            value = ((value + Double.random(in: -0.5...0.5)) * 100).rounded() / 100
            return (start + Int64(index) * 1_000, value)
        }
        #expect(Double(ChunkCodec.encode(walk).count) / 3_600 < 2)
    }

    /// Cut or mangled bytes give an error or some points, never a crash or a hang.
    @Test func mangledChunksAreRefusedOrReadNeverCrash() {
        let points: [Point] = (0..<500).map { (1_764_800_000_000 + Int64($0) * 997, sin(Double($0)) * 100) }
        let chunk = ChunkCodec.encode(points)
        var refused = 0
        for cut in 0..<chunk.count where (try? ChunkCodec.decode(Array(chunk.prefix(cut)))) == nil { refused += 1 }
        #expect(refused == chunk.count)
        for _ in 0..<5_000 {
            var mangled = chunk
            for _ in 0..<Int.random(in: 1...4) { mangled[Int.random(in: 0..<mangled.count)] = UInt8.random(in: 0...255) }
            _ = try? ChunkCodec.decode(mangled)
        }
        #expect(throws: ChunkCodec.Unreadable.self) { try ChunkCodec.decode([2, 0]) }
        #expect(throws: ChunkCodec.Unreadable.self) { try ChunkCodec.decode([1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) }
    }
}
