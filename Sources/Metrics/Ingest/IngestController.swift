import Foundation
import HTTPTypes
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// `POST /api/v1/metrics`: validates a batch, hands it to the writer and answers once it is committed.
package struct IngestController {
    package struct Limits: Sendable {
        var maxBodyBytes: Int
        var maxPoints: Int

        package init(maxBodyBytes: Int, maxPoints: Int) {
            self.maxBodyBytes = maxBodyBytes
            self.maxPoints = maxPoints
        }
    }

    struct Accepted: Encodable {
        var accepted: Int
        /// True when the Idempotency-Key was seen before: nothing new was stored.
        var duplicate: Bool
    }

    let writer: Writer
    let limits: Limits

    package init(writer: Writer, limits: Limits) {
        self.writer = writer
        self.limits = limits
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/metrics") { request, context -> Response in
            let scope = try Self.ingestScope(context.principal)
            let body = try await request.readBody(upTo: limits.maxBodyBytes)
            let inputs: [PointInput]
            do {
                inputs = try PointBatchJSON.decode(body)
            } catch let error as DecodingError {
                let problem = DecodingProblem(error)
                throw APIError.badRequest(problem.message, code: "malformed", details: problem.details)
            }
            guard inputs.count <= limits.maxPoints else {
                throw APIError.tooLarge("At most \(limits.maxPoints) points per request; split the batch.")
            }
            let points = try PointValidation.validate(inputs, now: Date())
            guard !points.isEmpty else { return try JSONResponse(Accepted(accepted: 0, duplicate: false)).response }
            let key = try Self.idempotencyKey(request).map { "\(scope):\($0)" }
            let outcome = try await Self.commit(IngestBatch(points: points, idempotencyKey: key), to: writer)
            return try JSONResponse(Accepted(accepted: points.count, duplicate: outcome == .duplicate)).response
        }
        return router
    }

    /// Hands a batch to the writer and waits for its commit; the writer's refusals become 503s.
    package static func commit(_ batch: IngestBatch, to writer: Writer) async throws -> CommitOutcome {
        do {
            return try await writer.submit(batch)
        } catch Writer.Failure.queueFull {
            throw APIError.unavailable(retryAfter: 1, "The write queue is full; retry shortly.")
        } catch Writer.Failure.shuttingDown {
            throw APIError.unavailable(retryAfter: 5, "The server is shutting down; retry shortly.")
        } catch Writer.Failure.commitFailed {
            throw APIError.unavailable(retryAfter: 2, "The database did not commit the batch; nothing was stored, retry.")
        }
    }

    /// Ingest tokens and admins may ingest; the answer scopes their idempotency keys.
    static func ingestScope(_ principal: Principal?) throws -> String {
        switch principal {
        case .ingest(let id): return Principal.ingest(tokenID: id).scope
        case .user(let user) where user.role == .admin: return Principal.user(user).scope
        case .user: throw APIError.forbidden("Only ingest tokens and admins may ingest.")
        case nil: throw APIError.unauthorized()
        }
    }

    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
        guard (1...200).contains(key.count) else {
            throw APIError.badRequest("An Idempotency-Key has 1 to 200 characters.", details: ["field": .string("Idempotency-Key")])
        }
        return key
    }
}
