import Foundation
import PulseboardKernel

/// One reading of this host's counters from /proc. Rates (CPU %, bytes/s) come from the
/// difference of two snapshots.
package struct ProcSnapshot: Equatable {
    struct CPUTimes: Equatable {
        var busy: UInt64
        var total: UInt64
    }

    var cpu: CPUTimes
    var memoryUsedPercent: Double
    var load1: Double
    var networkReceivedBytes: UInt64
    var networkSentBytes: UInt64
    var diskReadBytes: UInt64
    var diskWrittenBytes: UInt64

    /// Reads the files of a /proc (and /sys/block) tree; `root` lets tests point at fixtures.
    static func read(procRoot: String = "/proc", sysBlockRoot: String = "/sys/block") throws -> ProcSnapshot {
        func file(_ name: String) throws -> String {
            try String(contentsOfFile: "\(procRoot)/\(name)", encoding: .utf8)
        }
        let disks = Set((try? FileManager.default.contentsOfDirectory(atPath: sysBlockRoot)) ?? [])
        let (read, written) = parseDiskStats(try file("diskstats"), wholeDisks: disks)
        let (received, sent) = parseNetDev(try file("net/dev"))
        return ProcSnapshot(
            cpu: try parseCPU(try file("stat")),
            memoryUsedPercent: try parseMemoryUsedPercent(try file("meminfo")),
            load1: try parseLoad1(try file("loadavg")),
            networkReceivedBytes: received,
            networkSentBytes: sent,
            diskReadBytes: read,
            diskWrittenBytes: written
        )
    }

    struct ParseError: Error {
        var file: String
    }

    /// The first line of /proc/stat: `cpu user nice system idle iowait irq softirq steal …`.
    static func parseCPU(_ text: String) throws -> CPUTimes {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { throw ParseError(file: "stat") }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 4 else { throw ParseError(file: "stat") }
        // Guest time is already counted in user and nice.
        let total = fields.prefix(8).reduce(0, +)
        let idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
        return CPUTimes(busy: total - idle, total: total)
    }

    static func parseMemoryUsedPercent(_ text: String) throws -> Double {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let value = Double(parts[1]) {
                values[String(parts[0].dropLast())] = value
            }
        }
        guard let total = values["MemTotal"], total > 0, let available = values["MemAvailable"] else {
            throw ParseError(file: "meminfo")
        }
        return (total - available) / total * 100
    }

    static func parseLoad1(_ text: String) throws -> Double {
        guard let first = text.split(separator: " ").first, let load = Double(first) else { throw ParseError(file: "loadavg") }
        return load
    }

    /// Bytes received and sent over every interface but loopback.
    static func parseNetDev(_ text: String) -> (UInt64, UInt64) {
        var received: UInt64 = 0
        var sent: UInt64 = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let interface = parts[0].trimmingCharacters(in: .whitespaces)
            let fields = parts[1].split(separator: " ").compactMap { UInt64($0) }
            guard interface != "lo", fields.count >= 9 else { continue }
            received += fields[0]
            sent += fields[8]
        }
        return (received, sent)
    }

    /// Bytes read and written by whole disks (partitions would count twice), from sector counts.
    static func parseDiskStats(_ text: String, wholeDisks: Set<String>) -> (UInt64, UInt64) {
        var read: UInt64 = 0
        var written: UInt64 = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 10 else { continue }
            let name = String(fields[2])
            guard wholeDisks.contains(name), !name.hasPrefix("loop"), !name.hasPrefix("ram") else { continue }
            read += (UInt64(fields[5]) ?? 0) * 512
            written += (UInt64(fields[9]) ?? 0) * 512
        }
        return (read, written)
    }
}

extension ProcSnapshot {
    /// The host series between two snapshots `seconds` apart.
    func values(since previous: ProcSnapshot, seconds: Double) -> [(name: String, value: Double)] {
        func rate(_ now: UInt64, _ before: UInt64) -> Double {
            now >= before ? Double(now - before) / seconds : 0
        }
        let totalDelta = cpu.total > previous.cpu.total ? Double(cpu.total - previous.cpu.total) : 0
        let busyDelta = cpu.busy > previous.cpu.busy ? Double(cpu.busy - previous.cpu.busy) : 0
        return [
            ("host.cpu", totalDelta > 0 ? min(100, busyDelta / totalDelta * 100) : 0),
            ("host.memory", memoryUsedPercent),
            ("host.load1", load1),
            ("host.net.rx", rate(networkReceivedBytes, previous.networkReceivedBytes)),
            ("host.net.tx", rate(networkSentBytes, previous.networkSentBytes)),
            ("host.disk.read", rate(diskReadBytes, previous.diskReadBytes)),
            ("host.disk.write", rate(diskWrittenBytes, previous.diskWrittenBytes)),
        ]
    }
}
