import Foundation

/// The byte format of a chunk: many points of one series in one BLOB / bytea, compressed after
/// Facebook's Gorilla paper (Pelkonen et al., VLDB 2015): timestamps as delta-of-delta in
/// variable-width buckets; values as the XOR with the previous value, keeping only its
/// meaningful bits, or, when every value of the chunk is a decimal of at most six places (what
/// sensors and agents send: `21.37`), as the difference of the scaled integers in the same
/// buckets. A point a second takes one bit of timestamp; a random walk with two decimals about
/// one byte of value where XOR needs seven.
///
/// Layout: a version byte, the point count as a LEB128 varint, the value mode (decimal places
/// 0...6, or 255 for XOR), the first timestamp (zigzag varint), then a bit stream: the first
/// value in 64 bits (its bit pattern, or the scaled integer), and the other points.
/// Points are encoded in the order given; a chunk may hold late, out-of-order and repeated
/// timestamps (a delta-of-delta may be negative or zero), and a reader merges overlapping chunks.
package enum ChunkCodec {
    static let version: UInt8 = 1
    static let xorValues: UInt8 = 255
    static let maximumDecimalPlaces = 6
    private static let powersOfTen: [Double] = (0...maximumDecimalPlaces).map { pow(10, Double($0)) }

    /// A chunk that cannot be read: the bytes were cut short, or are not a chunk of this version.
    package struct Unreadable: Error, Equatable {
        package let reason: String
    }

    package static func encode(_ points: some Collection<(timestampMs: Int64, value: Double)>) -> [UInt8] {
        var header: [UInt8] = [version]
        appendVarint(UInt64(points.count), to: &header)
        guard let first = points.first else { return header }
        let places = decimalPlaces(of: points.lazy.map(\.value))
        header.append(places.map(UInt8.init) ?? xorValues)
        appendVarint(zigzag(first.timestampMs), to: &header)
        var bits = BitWriter(bytes: header)
        let scale = places.map { powersOfTen[$0] }
        var previousScaled = scale.map { Int64((first.value * $0).rounded(.toNearestOrEven)) } ?? 0
        bits.write(scale == nil ? first.value.bitPattern : UInt64(bitPattern: previousScaled), count: 64)

        var previousTime = first.timestampMs
        var previousDelta: Int64 = 0
        var previousValue = first.value.bitPattern
        var window: (leading: Int, trailing: Int)? = nil
        for point in points.dropFirst() {
            let delta = point.timestampMs &- previousTime
            writeBucketed(delta &- previousDelta, to: &bits)
            previousTime = point.timestampMs
            previousDelta = delta

            if let scale {
                let scaled = Int64((point.value * scale).rounded(.toNearestOrEven))
                writeBucketed(scaled &- previousScaled, to: &bits)
                previousScaled = scaled
                continue
            }
            let xor = point.value.bitPattern ^ previousValue
            previousValue = point.value.bitPattern
            if xor == 0 {
                bits.write(0, count: 1)
                continue
            }
            let leading = min(xor.leadingZeroBitCount, 31)
            let trailing = xor.trailingZeroBitCount
            if let window, leading >= window.leading, trailing >= window.trailing {
                // The meaningful bits fit in the previous value's window: reuse it.
                bits.write(0b10, count: 2)
                bits.write(xor >> window.trailing, count: 64 - window.leading - window.trailing)
            } else {
                let meaningful = 64 - leading - trailing
                bits.write(0b11, count: 2)
                bits.write(UInt64(leading), count: 5)
                bits.write(UInt64(meaningful & 63), count: 6)  // 64 is written as 0
                bits.write(xor >> trailing, count: meaningful)
                window = (leading, trailing)
            }
        }
        return bits.bytes
    }

    package static func decode(_ bytes: some Collection<UInt8>) throws(Unreadable) -> [(timestampMs: Int64, value: Double)] {
        let columns = try decodeColumns(bytes)
        return Array(zip(columns.timestamps, columns.values))
    }

    /// The points as two columns, in the chunk's order: what a query scans.
    package static func decodeColumns(_ bytes: some Collection<UInt8>) throws(Unreadable) -> (timestamps: [Int64], values: [Double]) {
        var offset = 0
        let bytes = BitReader.padded(bytes)
        let byteCount = bytes.count - BitReader.padding
        guard byteCount > 0, bytes[0] == version else { throw Unreadable(reason: "not a chunk of version \(version)") }
        offset = 1
        let count = try readVarint(bytes, at: &offset, limit: byteCount)
        guard count > 0 else { return ([], []) }
        // Every point after the first takes at least two bits.
        guard count <= UInt64(byteCount) * 4 + 1 else { throw Unreadable(reason: "the point count does not fit the chunk") }
        guard offset < byteCount else { throw Unreadable(reason: "cut short in the header") }
        let mode = bytes[offset]
        offset += 1
        guard mode == xorValues || Int(mode) <= maximumDecimalPlaces else { throw Unreadable(reason: "an unknown value mode") }
        let scale = mode == xorValues ? nil : powersOfTen[Int(mode)]
        var time = unzigzag(try readVarint(bytes, at: &offset, limit: byteCount))
        var reader = BitReader(padded: bytes, bitOffset: offset * 8)
        var value = try reader.read(64)
        var scaled = Int64(bitPattern: value)
        var timestamps = [time]
        var values = [scale.map { Double(scaled) / $0 } ?? Double(bitPattern: value)]
        timestamps.reserveCapacity(Int(count))
        values.reserveCapacity(Int(count))

        var delta: Int64 = 0
        var window: (leading: Int, trailing: Int)? = nil
        for _ in 1..<count {
            delta = delta &+ (try readBucketed(&reader))
            time = time &+ delta
            timestamps.append(time)
            if let scale {
                scaled = scaled &+ (try readBucketed(&reader))
                values.append(Double(scaled) / scale)
                continue
            }
            let control = try reader.readOnes(upTo: 2)
            if control > 0 {
                if control == 2 {
                    let leading = Int(try reader.read(5))
                    var meaningful = Int(try reader.read(6))
                    if meaningful == 0 { meaningful = 64 }
                    guard leading + meaningful <= 64 else { throw Unreadable(reason: "a value's bit window is out of range") }
                    window = (leading, 64 - leading - meaningful)
                }
                guard let window else { throw Unreadable(reason: "a value reuses a bit window before one was set") }
                value ^= try reader.read(64 - window.leading - window.trailing) << window.trailing
            }
            values.append(Double(bitPattern: value))
        }
        return (timestamps, values)
    }

    /// The fewest decimal places (0...6) that give back every value exactly, bit for bit, as
    /// the scaled integer divided by the power of ten; nil when there are none (say `1/3`, a
    /// NaN, -0.0 or a value too large for the integers to be exact).
    private static func decimalPlaces(of values: some Sequence<Double>) -> Int? {
        (0...maximumDecimalPlaces).first { places in
            let scale = powersOfTen[places]
            return values.allSatisfy { value in
                let scaled = (value * scale).rounded(.toNearestOrEven)
                // Through the integer itself, which has no -0.0.
                return abs(scaled) < 9.0e15 && (Double(Int64(scaled)) / scale).bitPattern == value.bitPattern
            }
        }
    }

    // MARK: Bucketed integers

    /// Signed integers that are mostly small (a timestamp's delta-of-delta, a scaled value's
    /// change): (prefix, prefix bits, value bits). Zero is a single 0 bit; anything beyond the
    /// last bucket is written in full.
    private static let buckets: [(prefix: UInt64, prefixBits: Int, valueBits: Int)] = [
        (0b10, 2, 7), (0b110, 3, 9), (0b1110, 4, 12), (0b11110, 5, 32),
    ]

    private static func writeBucketed(_ dod: Int64, to bits: inout BitWriter) {
        if dod == 0 { return bits.write(0, count: 1) }
        for bucket in buckets {
            let limit = Int64(1) << (bucket.valueBits - 1)
            if dod >= -limit + 1 && dod <= limit {
                bits.write(bucket.prefix, count: bucket.prefixBits)
                // Shifted into 0..<2^valueBits: -limit+1 ... limit → 0 ... 2*limit-1.
                bits.write(UInt64(dod + limit - 1), count: bucket.valueBits)
                return
            }
        }
        bits.write(0b11111, count: 5)
        bits.write(UInt64(bitPattern: dod), count: 64)
    }

    @inline(__always) private static func readBucketed(_ reader: inout BitReader) throws(Unreadable) -> Int64 {
        let ones = try reader.readOnes(upTo: 5)
        if ones == 0 { return 0 }
        if ones == 5 { return Int64(bitPattern: try reader.read(64)) }
        let valueBits = buckets[ones - 1].valueBits
        let limit = Int64(1) << (valueBits - 1)
        return Int64(try reader.read(valueBits)) - limit + 1
    }

    // MARK: Varints

    private static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
    private static func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    static func readVarint(_ bytes: [UInt8], at offset: inout Int, limit: Int? = nil) throws(Unreadable) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard offset < (limit ?? bytes.count) else { throw Unreadable(reason: "cut short in the header") }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
        }
        throw Unreadable(reason: "a varint longer than 64 bits")
    }
}

/// Bits appended most significant first, gathered 64 at a time.
struct BitWriter {
    private var full: [UInt8]
    /// Bits not yet in `full`, from the most significant end of `pending`.
    private var pending: UInt64 = 0
    private var pendingCount = 0

    init(bytes: [UInt8] = []) {
        full = bytes
    }

    /// What was written, the last byte padded with zeros.
    var bytes: [UInt8] {
        full + (0..<(pendingCount + 7) / 8).map { UInt8(truncatingIfNeeded: pending >> (56 - 8 * $0)) }
    }

    /// Appends the low `count` bits of `value` (0...64).
    mutating func write(_ value: UInt64, count: Int) {
        guard count > 0 else { return }
        let bits = count == 64 ? value : value & (1 << count &- 1)
        let room = 64 - pendingCount
        if count < room {
            pending |= bits << (room - count)
            pendingCount += count
            return
        }
        // Fill `pending`, move it to `full`, and keep what did not fit.
        let rest = count - room
        pending |= bits >> rest
        withUnsafeBytes(of: pending.bigEndian) { full.append(contentsOf: $0) }
        pending = rest == 0 ? 0 : bits << (64 - rest)
        pendingCount = rest
    }
}

/// Reads what `BitWriter` wrote, 64 bits at a time from a copy of the bytes with `padding` zero
/// bytes after them, so that a read near the end needs no bounds check of its own.
struct BitReader {
    static let padding = 9
    private let padded: [UInt8]
    private let bitCount: Int
    private var position: Int

    /// The bytes with the padding the reader needs.
    static func padded(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var padded: [UInt8] = []
        padded.reserveCapacity(bytes.count + padding)
        padded.append(contentsOf: bytes)
        padded.append(contentsOf: repeatElement(0, count: padding))
        return padded
    }

    init(padded: [UInt8], bitOffset: Int) {
        self.padded = padded
        bitCount = (padded.count - Self.padding) * 8
        position = bitOffset
    }

    /// The 64 bits from the current position, most significant first (zeros past the end).
    @inline(__always) private func peek() -> UInt64 {
        let byte = position >> 3
        let word = padded.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: byte, as: UInt64.self)) }
        let shift = position & 7
        return shift == 0 ? word : word << shift | UInt64(padded[byte + 8]) >> (8 - shift)
    }

    /// The next `count` bits (0...64) as the low bits of the answer.
    @inline(__always) mutating func read(_ count: Int) throws(ChunkCodec.Unreadable) -> UInt64 {
        guard position + count <= bitCount else { throw ChunkCodec.Unreadable(reason: "cut short in the points") }
        guard count > 0 else { return 0 }
        let value = peek() >> (64 - count)
        position += count
        return value
    }

    /// How many 1 bits come next, up to `limit` (< 64), and the 0 that ends them when there are
    /// fewer: consumed.
    @inline(__always) mutating func readOnes(upTo limit: Int) throws(ChunkCodec.Unreadable) -> Int {
        let ones = min((~peek()).leadingZeroBitCount, limit)
        let used = ones < limit ? ones + 1 : ones
        guard position + used <= bitCount else { throw ChunkCodec.Unreadable(reason: "cut short in the points") }
        position += used
        return ones
    }
}
