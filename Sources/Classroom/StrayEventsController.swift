import Foundation
import Hummingbird
import PulseboardCourses
import PulseboardHTTP
import PulseboardKernel
import PulseboardMetrics

/// `GET /api/v1/stray-events` and `POST /api/v1/stray-events/assign`: the events that arrived
/// with a missing, unknown or expired class token, grouped by the token they came with, and
/// their assignment to a class in one action. Admins see every group; instructors those whose
/// expired token belonged to a class they teach (a group without a class may name students of
/// anyone's class, so only admins see it).
package struct StrayEventsController {
    struct Assignment: Decodable {
        var tokenLabel: String
        /// The group's class (its `classId`), or absent for a group without one.
        var fromClassId: Int64?
        /// The class the events go to.
        var classId: Int64
    }

    struct Assigned: Encodable {
        var assigned: Int
        var stored: Int
    }

    let stray: StrayEvents
    let classes: Classes
    let writer: Writer
    let processor: EventProcessor
    /// Events moved per commit.
    static let batchSize = 1_000

    package init(stray: StrayEvents, classes: Classes, writer: Writer, processor: EventProcessor) {
        self.stray = stray
        self.classes = classes
        self.writer = writer
        self.processor = processor
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/stray-events") { _, context -> Response in
            try JSONResponse(["groups": try await stray.groups(classIDs: try await visibleClasses(context))]).response
        }
        router.post("/stray-events/assign") { request, context -> Response in
            let user = try context.requireUser([.admin, .instructor])
            let body = try await request.decode(as: Assignment.self, context: context)
            if let visible = try await visibleClasses(context), !(body.fromClassId.map(visible.contains) ?? false) {
                throw APIError.forbidden("Only admins assign events whose token belonged to no class of yours.")
            }
            guard let target = try await classes.find(id: body.classId) else {
                throw APIError(.notFound, code: "not_found", message: "No class \(body.classId).", details: ["field": .string("classId")])
            }
            guard try await classes.isTaught(target, by: user) else { throw APIError.forbidden("This is another instructor's class.") }
            // In batches: each commit stores its events in the class, then they leave the stray
            // list (assigning again after an interruption stores nothing twice: events are kept
            // once per class and event id).
            var assigned = 0
            var stored = 0
            while case let taken = try await stray.take(tokenLabel: body.tokenLabel, classHint: body.fromClassId, into: target.id, limit: Self.batchSize),
                !taken.ids.isEmpty
            {
                stored += try await EventsController.store(taken.events, writer: writer, processor: processor)
                try await stray.remove(ids: taken.ids)
                assigned += taken.events.count
            }
            guard assigned > 0 else { throw APIError.notFound("No stray events in this group (assigned already?).") }
            return try JSONResponse(Assigned(assigned: assigned, stored: stored)).response
        }
        return router
    }

    /// Nil for an admin (every class), else the classes the instructor teaches.
    private func visibleClasses(_ context: AppRequestContext) async throws -> Set<Int64>? {
        let user = try context.requireUser([.admin, .instructor])
        guard user.role == .instructor else { return nil }
        return Set(try await classes.list(instructorID: user.id).map(\.id))
    }
}
