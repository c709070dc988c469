import Foundation
import Testing

@testable import PulseboardMetrics

@Suite("Line protocol") struct LineProtocolTests {
    static let nowMs: Int64 = 1_700_000_100_000

    static func parse(_ body: String, precision: LineProtocol.Precision = .nanoseconds) -> LineProtocol.Batch {
        LineProtocol.parse(Data(body.utf8), precision: precision, nowMs: nowMs)
    }

    static func point(_ name: String, _ tags: [String: String], _ timestampMs: Int64, _ value: Double) -> MetricPoint {
        MetricPoint(series: SeriesKey(name: name, tags: tags), timestampMs: timestampMs, value: value)
    }

    @Test func everyPartOfALineIsRead() {
        let body = #"""
            # a comment, then a blank line

            cpu,host=a,region=eu\ west usage=12.5,idle=87i,count=3u,up=t,note="a \"quoted\", text" 1700000000123456789
              mem,path=C:\\temp,k\=ey=v\,al used=-1.5e1,ok=FALSE,big=18446744073709551615u
            disk,dev=sda r=0.5 1700000000000000000\#r\#n
            """#
        let batch = Self.parse(body)
        #expect(batch.errors.isEmpty)
        #expect(!batch.everyLineTimestamped)
        let cpu = ["host": "a", "region": "eu west"]
        let mem = ["path": #"C:\temp"#, "k=ey": "v,al"]
        #expect(
            batch.points == [
                Self.point("cpu.usage", cpu, 1_700_000_000_123, 12.5), Self.point("cpu.idle", cpu, 1_700_000_000_123, 87),
                Self.point("cpu.count", cpu, 1_700_000_000_123, 3), Self.point("cpu.up", cpu, 1_700_000_000_123, 1),
                Self.point("mem.used", mem, Self.nowMs, -15), Self.point("mem.ok", mem, Self.nowMs, 0),
                Self.point("mem.big", mem, Self.nowMs, Double(UInt64.max)),
                Self.point("disk.r", ["dev": "sda"], 1_700_000_000_000, 0.5),
            ])
    }

    @Test(
        arguments: [
            ("n", 1_700_000_000_123_456_789, 1_700_000_000_123), ("ns", 1_700_000_000_123_456_789, 1_700_000_000_123),
            ("u", 1_700_000_000_123_456, 1_700_000_000_123), ("us", 1_700_000_000_123_456, 1_700_000_000_123),
            ("ms", 1_700_000_000_123, 1_700_000_000_123), ("s", 1_700_000_000, 1_700_000_000_000), ("m", 28_333_333, 1_699_999_980_000),
            ("h", 472_222, 1_699_999_200_000),
        ] as [(String, Int64, Int64)])
    func timestampsAreInTheRequestsPrecision(precision: String, sent: Int64, milliseconds: Int64) throws {
        let batch = Self.parse("x v=1 \(sent)", precision: try #require(LineProtocol.Precision(parameter: precision)))
        #expect(batch.points.map(\.timestampMs) == [milliseconds])
        #expect(batch.everyLineTimestamped)
    }

    @Test func anUnknownPrecisionIsRefused() {
        #expect(LineProtocol.Precision(parameter: "ps") == nil)
        #expect(LineProtocol.Precision(parameter: nil) == .nanoseconds)
    }

    @Test func badLinesAreNamedAndTheOthersStillStored() {
        let cases: [(String, String)] = [
            ("cpu", "the line has no fields"),
            ("cpu ", "the line has no fields"),
            ("cpu,host=a", "the line has no fields"),
            ("cpu,host usage=1", "the tag host has no value"),
            ("cpu,host= usage=1", "an empty tag value"),
            ("cpu,=a usage=1", "an empty tag key"),
            (",host=a usage=1", "an empty measurement"),
            ("cpu usage", "the field usage has no value"),
            ("cpu usage=", "a field without a value"),
            ("cpu usage=1,", "a field without a key"),
            ("cpu =1", "a field without a key"),
            ("cpu usage=abc", "'abc' is not a number, integer, boolean or string"),
            ("cpu usage=tru", "'tru' is not a number, integer, boolean or string"),
            ("cpu usage=1.5i", "'1.5i' is not an integer field"),
            ("cpu usage=-1u", "'-1u' is not an integer field"),
            ("cpu usage=NaN", "'NaN' is not a number, integer, boolean or string"),
            ("cpu usage=inf", "'inf' is not a number, integer, boolean or string"),
            ("cpu usage=+1", "'+1' is not a number, integer, boolean or string"),
            ("cpu usage=0x10", "'0x10' is not a number, integer, boolean or string"),
            ("cpu usage=1e999", "'1e999' is out of range"),
            (#"cpu note="open"#, "a string field without its closing quote"),
            (#"cpu note="a"b"#, "unexpected text after the fields"),
            ("cpu usage=1 12abc", "the timestamp '12abc' is not an integer"),
            ("cpu usage=1 1 2", "unexpected text after the timestamp"),
            ("cpu usage=1 -1", "the timestamp is before 1970."),
            ("cpu usage=1 9000000000000000000", "the timestamp is more than 1 h in the future."),
            ("cpu usage=1 99999999999999999999", "the timestamp '99999999999999999999' is not an integer"),
            ("cpu us\\ age=1", "cpu.us age: a name has at most 200 letters, digits and . _ - : /"),
            ("c\u{e9}pu usage=1", "c\u{e9}pu.usage: a name has at most 200 letters, digits and . _ - : /"),
            ("cpu,t=\(String(repeating: "v", count: 129)) usage=1", "cpu.usage: tag keys are 1 to 128 bytes, values at most 128."),
        ]
        for (line, reason) in cases {
            let batch = Self.parse("ok value=1\n" + line + "\nok value=2")
            #expect(batch.points.map(\.value) == [1, 2], "\(line)")
            #expect(batch.errors.map(\.line) == [2], "\(line)")
            #expect(batch.errors.first?.reason == reason, "\(line)")
        }
    }

    @Test func aLineStoresNothingUnlessAllOfItCanBeStored() {
        let batch = Self.parse("cpu a=1,b=x,c=3\ncpu a=4")
        #expect(batch.points.map(\.value) == [4])
        #expect(batch.errors.map(\.description) == ["line 1 ('cpu a=1,b=x,c=3'): 'x' is not a number, integer, boolean or string"])
    }

    @Test func stringFieldsAreReadAndNotKept() {
        let batch = Self.parse(#"sys uptime_format="1 day, 2:03",uptime=93780i,load=0.5 1700000000000000000"#)
        #expect(batch.errors.isEmpty)
        #expect(batch.points.map(\.series.name) == ["sys.uptime", "sys.load"])
        #expect(Self.parse(#"sys uptime_format="1 day""#).points.isEmpty)
    }

    @Test func windowsLineEndsAndInvalidUTF8() {
        let batch = Self.parse("cpu usage=1 1700000000000000000\r\ncpu usage=2 1700000000000000000\r\n")
        #expect(batch.points.map(\.value) == [1, 2] && batch.errors.isEmpty)
        var bytes = Array("cpu,host=".utf8) + [0xFF] + Array(" usage=1".utf8)
        #expect(LineProtocol.parse(Data(bytes), precision: .nanoseconds, nowMs: Self.nowMs).errors.first?.reason == "a tag value that is not UTF-8")
        bytes = Array("cpu usage=1".utf8) + [0xFF]
        #expect(LineProtocol.parse(Data(bytes), precision: .nanoseconds, nowMs: Self.nowMs).errors.count == 1)
    }

    /// Mangled bodies never crash or hang the parser; every line is either stored or reported.
    @Test func mangledBodiesNeverCrashIt() {
        let seed = Array(#"cpu,host=a\ b,x=y usage=1.5,n=2i,s="q\"x",b=true 1700000000000000000"#.utf8)
        let alphabet = Array(" ,=\\\"#i.-+tufeE0123456789".utf8) + [UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0xFF, 0xC3]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var body = seed + [UInt8(ascii: "\n")] + seed
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let at = Int.random(in: 0..<body.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: body[at] = alphabet.randomElement(using: &generator)!
                case 1: body.remove(at: at)
                default: body.insert(alphabet.randomElement(using: &generator)!, at: at)
                }
                if body.isEmpty { body = seed }
            }
            let batch = LineProtocol.parse(Data(body), precision: .nanoseconds, nowMs: Self.nowMs)
            let lines = body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
            #expect(batch.errors.count <= lines)
            #expect(batch.errors.allSatisfy { (1...lines).contains($0.line) })
            #expect(batch.points.allSatisfy { $0.value.isFinite && $0.series.name.contains(".") })
        }
    }
}
