import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// `POST/GET /api/v1/assignments` (filter `classId`), `GET/PUT/PATCH/DELETE /api/v1/assignments/{id}`
/// and `GET /api/v1/assignments/{id}/progress`. Instructors manage the assignments of their
/// classes, admins all; students see those of the classes they are in (any other is a 404).
package struct AssignmentsController {
    struct NewAssignment: Decodable {
        var classId: Int64
        var title: String
        var notebookPath: String
        var description: String?
        var dueAt: String?
    }

    /// PUT needs title and notebookPath (the rest is cleared when absent); PATCH any field. The
    /// class of an assignment cannot change.
    struct AssignmentChange: Decodable {
        var classId: Int64?
        var title: String?
        var notebookPath: String?
        var description: String?
        var dueAt: String?
    }

    struct AssignmentView: Encodable {
        var id: Int64
        var classId: Int64
        var title: String
        var description: String
        var notebookPath: String
        var dueAt: String?
        var createdAt: String
        var updatedAt: String

        init(_ record: AssignmentRecord) {
            id = record.id
            classId = record.classID
            title = record.title
            description = record.description
            notebookPath = record.notebookPath
            dueAt = record.dueAtMs.map { Timestamp.format(milliseconds: $0) }
            createdAt = Timestamp.format(milliseconds: record.createdAtMs)
            updatedAt = Timestamp.format(milliseconds: record.updatedAtMs)
        }
    }

    struct AssignmentList: Encodable {
        var assignments: [AssignmentView]
    }

    struct Progress: Encodable {
        var assignmentId: Int64
        var students: [AssignmentProgress]
    }

    let assignments: Assignments
    let classes: Classes

    package init(assignments: Assignments, classes: Classes) {
        self.assignments = assignments
        self.classes = classes
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/assignments") { request, context -> Response in
            let user = try context.requireUser([.admin, .instructor])
            let body = try await request.decode(as: NewAssignment.self, context: context)
            guard let record = try await classes.find(id: body.classId) else {
                throw APIError(.notFound, code: "not_found", message: "No class with id \(body.classId).", details: ["field": .string("classId")])
            }
            guard try await classes.isTaught(record, by: user) else { throw APIError.forbidden("This is another instructor's class.") }
            let now = Date().millisecondsSince1970
            let created = try await assignments.create(
                AssignmentRecord(
                    id: 0, classID: record.id, title: try Self.validated(title: body.title), description: try Self.description(body.description),
                    notebookPath: try Self.validated(notebookPath: body.notebookPath), dueAtMs: try Self.dueAt(body.dueAt, notBefore: now),
                    createdBy: user.id, createdAtMs: now, updatedAtMs: now),
                audit: AuditNote("create", "assignment", details: "class \(record.id)", context: context))
            return try JSONResponse(AssignmentView(created), status: .created).response
        }
        router.get("/assignments") { request, context -> Response in
            let user = try context.requireUser()
            var visible = try await visibleClasses(user)
            if let text = request.uri.queryParameters.get("classId") {
                guard let classID = Int64(text) else {
                    throw APIError.badRequest("'classId' is a class id.", details: ["field": .string("classId")])
                }
                visible = visible.map { $0.contains(classID) ? [classID] : [] } ?? [classID]
            }
            return try JSONResponse(AssignmentList(assignments: try await assignments.list(classIDs: visible).map(AssignmentView.init))).response
        }
        router.get("/assignments/{id}") { _, context -> Response in
            try JSONResponse(AssignmentView(try await visibleAssignment(context))).response
        }
        router.get("/assignments/{id}/progress") { _, context -> Response in
            let record = try await managedAssignment(context)
            return try JSONResponse(Progress(assignmentId: record.id, students: try await assignments.progress(of: record))).response
        }
        router.put("/assignments/{id}") { request, context -> Response in
            try await change(request, context, replacing: true)
        }
        router.patch("/assignments/{id}") { request, context -> Response in
            try await change(request, context, replacing: false)
        }
        router.delete("/assignments/{id}") { _, context -> Response in
            let record = try await managedAssignment(context)
            try await assignments.delete(id: record.id, audit: AuditNote("delete", "assignment", details: "class \(record.classID)", context: context))
            return Response(status: .noContent)
        }
        return router
    }

    private func change(_ request: Request, _ context: AppRequestContext, replacing: Bool) async throws -> Response {
        var record = try await managedAssignment(context)
        let body = try await request.decode(as: AssignmentChange.self, context: context)
        if let classID = body.classId, classID != record.classID {
            throw APIError.unprocessable("An assignment cannot move to another class.", details: ["field": .string("classId")])
        }
        if replacing, body.title == nil || body.notebookPath == nil {
            throw APIError.badRequest(
                "PUT replaces the assignment: send title and notebookPath.", details: ["field": .string(body.title == nil ? "title" : "notebookPath")])
        }
        if let title = body.title { record.title = try Self.validated(title: title) }
        if let path = body.notebookPath { record.notebookPath = try Self.validated(notebookPath: path) }
        if body.description != nil || replacing { record.description = try Self.description(body.description) }
        if body.dueAt != nil || replacing { record.dueAtMs = try Self.dueAt(body.dueAt, notBefore: record.createdAtMs) }
        record.updatedAtMs = Date().millisecondsSince1970
        try await assignments.update(record, audit: AuditNote(replacing ? "replace" : "change", "assignment", context: context))
        return try JSONResponse(AssignmentView(record)).response
    }

    /// The class ids a user may see assignments of; nil for all (admins).
    private func visibleClasses(_ user: UserClaims) async throws -> [Int64]? {
        switch user.role {
        case .admin: nil
        case .instructor: try await classes.list(instructorID: user.id).map(\.id)
        case .student: try await classes.of(studentEmail: user.email).map(\.id)
        }
    }

    private func visibleAssignment(_ context: AppRequestContext) async throws -> AssignmentRecord {
        try await Self.visibleAssignment(context, assignments: assignments, classes: classes)
    }

    private func managedAssignment(_ context: AppRequestContext) async throws -> AssignmentRecord {
        try await Self.managedAssignment(context, assignments: assignments, classes: classes)
    }

    /// The assignment in the path if the caller may see it; a student outside its class gets
    /// the same 404 as for an assignment that does not exist.
    static func visibleAssignment(_ context: AppRequestContext, assignments: Assignments, classes: Classes) async throws -> AssignmentRecord {
        let user = try context.requireUser()
        guard let id = context.parameters.get("id", as: Int64.self), let record = try await assignments.find(id: id) else {
            throw APIError.notFound("No assignment with this id.")
        }
        switch user.role {
        case .admin:
            return record
        case .instructor:
            guard let owning = try await classes.find(id: record.classID), try await classes.isTaught(owning, by: user) else {
                throw APIError.forbidden("This assignment belongs to another instructor's class.")
            }
            return record
        case .student:
            guard try await classes.of(studentEmail: user.email).contains(where: { $0.id == record.classID }) else {
                throw APIError.notFound("No assignment with this id.")
            }
            return record
        }
    }

    /// The assignment in the path if the caller may change it (its class's instructor or an
    /// admin): for the API and the assignment page alike.
    package static func managedAssignment(_ context: AppRequestContext, assignments: Assignments, classes: Classes) async throws -> AssignmentRecord {
        _ = try context.requireUser([.admin, .instructor])
        return try await visibleAssignment(context, assignments: assignments, classes: classes)
    }

    static func validated(title: String) throws -> String {
        let title = title.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(title.count) else {
            throw APIError.unprocessable("A title has 1 to 200 characters.", details: ["field": .string("title")])
        }
        return title
    }

    static func validated(notebookPath: String) throws -> String {
        let path = notebookPath.trimmingCharacters(in: .whitespaces)
        guard (1...500).contains(path.count) else {
            throw APIError.unprocessable("A notebook path has 1 to 500 characters, as the extension reports it.", details: ["field": .string("notebookPath")])
        }
        return path
    }

    static func description(_ text: String?) throws -> String {
        try ClassesController.optional(text, field: "description", max: 10_000) ?? ""
    }

    /// A due date: ISO-8601, not before the assignment was created (422 otherwise).
    static func dueAt(_ text: String?, notBefore createdMs: Int64) throws -> Int64? {
        guard let text else { return nil }
        guard let due = Timestamp.parse(text)?.millisecondsSince1970 else {
            throw APIError.unprocessable("'dueAt' is not an ISO-8601 time.", details: ["field": .string("dueAt")])
        }
        guard due >= createdMs else {
            throw APIError.unprocessable("The due date is before the assignment was created.", details: ["field": .string("dueAt")])
        }
        return due
    }
}
