import CSnappy
import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel
import SwiftProtobuf

/// `POST /prometheus/api/v1/write`: Prometheus remote write 1.0, a snappy-compressed protobuf
/// `WriteRequest` (RemoteWrite.proto). Each time series becomes the series named by its
/// `__name__` label, its other labels the tags. Answered 204 once committed, like every ingest.
///
/// Samples that are not finite numbers are skipped and counted
/// (`pulseboard_remote_write_samples_skipped_total`): Prometheus marks a series that went away
/// with a NaN (a stale marker), and Pulseboard keeps finite numbers. A series that cannot be
/// stored (a name or label too long, too many labels) is named in a 400 and the others are
/// stored: Prometheus does not retry a 400, and they would be refused again.
package struct RemoteWriteController {
    let writer: Writer
    let telemetry: Telemetry
    let limits: IngestController.Limits

    package init(writer: Writer, telemetry: Telemetry, limits: IngestController.Limits) {
        self.writer = writer
        self.telemetry = telemetry
        self.limits = limits
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/prometheus/api/v1/write") { request, context -> Response in
            let scope = try IngestController.ingestScope(context.principal)
            switch request.headers[.contentEncoding]?.lowercased() {
            case nil, "snappy": break
            case let other?:
                throw APIError(.unsupportedMediaType, code: "unsupported_encoding", message: "Content-Encoding \(other): remote write is snappy.")
            }
            let compressed = try await request.readBody(upTo: limits.maxBodyBytes)
            let body = try Snappy.decompress(compressed, limit: limits.maxBodyBytes)
            let writeRequest: Prometheus_WriteRequest
            do {
                writeRequest = try Prometheus_WriteRequest(serializedBytes: body)
            } catch {
                throw APIError.badRequest("The body is not a remote-write WriteRequest: \(error).", code: "malformed")
            }
            let (points, refused, skipped) = Self.points(of: writeRequest, nowMs: Date().millisecondsSince1970)
            if skipped > 0 { telemetry.remoteWriteSamplesSkipped.increment(by: Int64(skipped)) }
            guard points.count <= limits.maxPoints else {
                throw APIError.tooLarge("At most \(limits.maxPoints) samples per request; lower max_samples_per_send.")
            }
            if !points.isEmpty {
                // Prometheus sends a retry as the same bytes, and every sample has its timestamp:
                // the same body is the same samples, stored once.
                let key = "\(scope):body:\(compressed.sha256Hex)"
                _ = try await IngestController.commit(IngestBatch(points: points, idempotencyKey: key), to: writer)
            }
            if let first = refused.first {
                throw APIError.badRequest(
                    "\(refused.count) of \(writeRequest.timeseries.count) series refused (the others were stored); the first: \(first)",
                    code: "invalid_series")
            }
            return Response(status: .noContent)
        }
        return router
    }

    /// The samples of a request as points, why the series that cannot be stored were refused,
    /// and how many samples were not finite.
    static func points(of request: Prometheus_WriteRequest, nowMs: Int64) -> (points: [MetricPoint], refused: [String], skipped: Int) {
        var points: [MetricPoint] = []
        var refused: [String] = []
        var skipped = 0
        points.reserveCapacity(request.timeseries.reduce(0) { $0 + $1.samples.count })
        for series in request.timeseries {
            var name: String?
            var tags: [String: String] = [:]
            for label in series.labels {
                if label.name == "__name__" { name = label.value } else { tags[label.name] = label.value }
            }
            guard let name else {
                refused.append("a series without __name__ (\(tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")))")
                continue
            }
            let key = SeriesKey(name: name, tags: tags)
            if let problem = PointValidation.problem(with: key) {
                refused.append("\(name): \(problem.message)")
                continue
            }
            var seriesPoints: [MetricPoint] = []
            for sample in series.samples {
                guard sample.value.isFinite else {
                    skipped += 1
                    continue
                }
                if let problem = PointValidation.problem(withTimestamp: sample.timestamp, nowMs: nowMs) {
                    refused.append("\(name): \(problem)")
                    seriesPoints = []
                    break
                }
                seriesPoints.append(MetricPoint(series: key, timestampMs: sample.timestamp, value: sample.value))
            }
            points += seriesPoints
        }
        return (points, refused, skipped)
    }
}

/// Snappy's block format through Debian's libsnappy.
enum Snappy {
    /// The bytes a block holds, refused with a 413 before anything is allocated when it says it
    /// holds more than `limit`, and with a 400 when it is not a snappy block.
    static func decompress(_ compressed: Data, limit: Int) throws -> Data {
        try compressed.withUnsafeBytes { (input: UnsafeRawBufferPointer) throws -> Data in
            let source = input.baseAddress?.assumingMemoryBound(to: CChar.self)
            var length = 0
            guard let source, snappy_uncompressed_length(source, input.count, &length) == SNAPPY_OK else {
                throw APIError.badRequest("The body is not snappy-compressed (remote write is snappy's block format).", code: "malformed")
            }
            guard length <= limit else { throw APIError.tooLarge("The body is larger than \(limit) bytes once decompressed.") }
            guard length > 0 else { return Data() }
            var output = Data(count: length)
            let status = output.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
                snappy_uncompress(source, input.count, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
            }
            guard status == SNAPPY_OK else { throw APIError.badRequest("The snappy body is corrupt.", code: "malformed") }
            return output
        }
    }

    /// Compresses a block (for the tests and the benchmark's bodies).
    static func compress(_ data: Data) -> Data {
        data.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> Data in
            var length = snappy_max_compressed_length(input.count)
            var output = Data(count: length)
            output.withUnsafeMutableBytes { buffer in
                _ = snappy_compress(
                    input.baseAddress?.assumingMemoryBound(to: CChar.self), input.count, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
            }
            return output.prefix(length)
        }
    }
}
