import Foundation
import Hummingbird
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel
import PulseboardLive
import PulseboardTracing

/// `POST/GET /api/v1/submissions`, `GET/PUT/PATCH/DELETE /api/v1/submissions/{id}` and
/// `GET /api/v1/submissions/{id}/notebook`. A student submits a notebook (the request body is
/// the `.ipynb` file itself) for themselves to an assignment of a class they are enrolled in;
/// each upload is a new version. The class's instructor (or an admin) grades with PUT/PATCH,
/// which tells the student live on `notifications:<user id>`. A student sees only their own
/// submissions: any other is a 404, as if it did not exist.
package struct SubmissionsController {
    /// Jupyter notebooks up to this size are accepted (413 beyond).
    static let maxNotebookBytes = 10 * 1024 * 1024

    package struct SubmissionView: Encodable {
        struct Version: Encodable {
            var version: Int64
            var submittedAt: String
            var late: Bool
            var size: Int64
            var sha256: String
        }

        var id: Int64
        var assignmentId: Int64
        var classId: Int64
        var studentId: Int64
        var studentEmail: String
        var version: Int64
        var submittedAt: String
        var late: Bool
        var grade: Double?
        var feedback: String?
        var gradedVersion: Int64?
        var gradedAt: String?
        var versions: [Version]

        init(_ record: SubmissionRecord) {
            id = record.id
            assignmentId = record.assignmentID
            classId = record.classID
            studentId = record.studentID
            studentEmail = record.studentEmail
            version = record.latest.version
            submittedAt = Timestamp.format(milliseconds: record.latest.submittedAtMs)
            late = record.latest.late
            grade = record.grade
            feedback = record.feedback
            gradedVersion = record.gradedVersion
            gradedAt = record.gradedAtMs.map { Timestamp.format(milliseconds: $0) }
            versions = record.versions.map {
                Version(version: $0.version, submittedAt: Timestamp.format(milliseconds: $0.submittedAtMs), late: $0.late, size: $0.size, sha256: $0.sha256)
            }
        }
    }

    struct SubmissionList: Encodable {
        var submissions: [SubmissionView]
        var skip: Int
        var limit: Int
    }

    let submissions: Submissions
    let assignments: Assignments
    let classes: Classes
    let notifier: Notifier
    /// Tells the class's live view (the classroom publishes it) that a student submitted.
    let submitted: @Sendable (_ submission: SubmissionView, _ classID: Int64, _ email: String) -> Void
    /// Where the steps of a submission are recorded (nil: not recorded).
    let log: OperationsLog?

    package init(
        submissions: Submissions, assignments: Assignments, classes: Classes, notifier: Notifier, log: OperationsLog?,
        submitted: @escaping @Sendable (_ submission: SubmissionView, _ classID: Int64, _ email: String) -> Void
    ) {
        self.log = log
        self.submissions = submissions
        self.assignments = assignments
        self.classes = classes
        self.notifier = notifier
        self.submitted = submitted
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/submissions") { request, context -> Response in
            let user = try context.requireUser()
            guard user.role == .student else {
                throw APIError.forbidden("Only students submit, each for themselves.")
            }
            let query = request.uri.queryParameters
            if let other = query.get("studentId"), other != String(user.id) {
                throw APIError.forbidden("A student submits only for themselves.")
            }
            guard let text = query.get("assignmentId") else {
                throw APIError.badRequest("Name the assignment: ?assignmentId=<id>.", details: ["field": .string("assignmentId")])
            }
            guard let assignmentID = Int64(text) else {
                throw APIError.badRequest("'assignmentId' is an assignment id.", details: ["field": .string("assignmentId")])
            }
            // An assignment of a class the student is not in does not exist for them.
            guard let assignment = try await assignments.find(id: assignmentID),
                try await classes.of(studentEmail: user.email).contains(where: { $0.id == assignment.classID })
            else {
                throw APIError(
                    .notFound, code: "not_found", message: "No assignment \(assignmentID) in your classes.", details: ["field": .string("assignmentId")])
            }
            let notebook = try await request.readBody(upTo: Self.maxNotebookBytes)
            var task = TaskRecorder(log: log, traceID: context.traceID, task: "submission")
            try await task.step("validate", input: ["assignmentId": .integer(assignment.id), "bytes": .integer(Int64(notebook.count))]) {
                try Self.validateNotebook(notebook)
            }
            do {
                let record = try await task.step("store", input: ["studentId": .integer(user.id)]) {
                    try await submissions.submit(
                        notebook, to: assignment, studentID: user.id, now: Date(),
                        audit: AuditNote("submit", "submission", details: "assignment \(assignment.id)", context: context))
                } output: {
                    ["submissionId": .integer($0.id), "version": .integer($0.latest.version)]
                }
                submitted(SubmissionView(record), assignment.classID, user.email.lowercased())
                return try JSONResponse(SubmissionView(record), status: .created).response
            } catch StoreError.conflict {
                throw APIError.conflict("Another upload of yours to this assignment was stored at the same moment; send it again.")
            }
        }
        router.get("/submissions") { request, context -> Response in
            let user = try context.requireUser()
            let query = request.uri.queryParameters
            var filter = Submissions.Filter()
            filter.skip = try QueryParameter.integer(query.get("skip"), field: "skip", range: 0...Int(Int32.max)) ?? 0
            filter.limit = try QueryParameter.integer(query.get("limit"), field: "limit", range: 1...1_000) ?? 100
            filter.studentID = try Self.id(query.get("studentId"), field: "studentId")
            let assignmentID = try Self.id(query.get("assignmentId"), field: "assignmentId")
            switch user.role {
            case .admin:
                filter.assignmentIDs = assignmentID.map { [$0] }
            case .instructor:
                let own = try await assignments.list(classIDs: try await classes.list(instructorID: user.id).map(\.id)).map(\.id)
                filter.assignmentIDs = assignmentID.map { own.contains($0) ? [$0] : [] } ?? own
            case .student:
                // Only their own, whatever the filter asks.
                if let student = filter.studentID, student != user.id { filter.assignmentIDs = [] }
                filter.studentID = user.id
                filter.assignmentIDs = filter.assignmentIDs ?? assignmentID.map { [$0] }
            }
            let list = try await submissions.list(filter)
            return try JSONResponse(SubmissionList(submissions: list.map(SubmissionView.init), skip: filter.skip, limit: filter.limit)).response
        }
        router.get("/submissions/{id}") { _, context -> Response in
            try JSONResponse(SubmissionView(try await visibleSubmission(context))).response
        }
        router.get("/submissions/{id}/notebook") { request, context -> Response in
            let record = try await visibleSubmission(context)
            let wanted = try Self.id(request.uri.queryParameters.get("version"), field: "version") ?? record.latest.version
            guard let version = record.versions.first(where: { $0.version == wanted }) else {
                throw APIError(.notFound, code: "not_found", message: "No version \(wanted) of this submission.", details: ["field": .string("version")])
            }
            guard let content = try await submissions.content(of: version, submissionID: record.id) else {
                throw APIError(.internalServerError, code: "file_missing", message: "The notebook of this version is missing from the file store.")
            }
            let name = "submission-\(record.id)-v\(version.version).ipynb"
            return Response(
                status: .ok,
                headers: [
                    .contentType: "application/x-ipynb+json", .contentDisposition: "attachment; filename=\"\(name)\"", .cacheControl: "private, no-store",
                ],
                body: .init(byteBuffer: ByteBuffer(bytes: content)))
        }
        router.put("/submissions/{id}") { request, context -> Response in
            try await grade(request, context, replacing: true)
        }
        router.patch("/submissions/{id}") { request, context -> Response in
            try await grade(request, context, replacing: false)
        }
        router.delete("/submissions/{id}") { _, context -> Response in
            let user = try context.requireUser()
            let record = try await visibleSubmission(context)
            guard user.role != .student else {
                throw APIError.forbidden("Submissions are kept for grading; ask your instructor to remove one.")
            }
            try await submissions.delete(
                record,
                audit: AuditNote("delete", "submission", details: "assignment \(record.assignmentID)", context: context))
            return Response(status: .noContent)
        }
        return router
    }

    /// Sets the grade and feedback (PUT: both, an absent one cleared; PATCH: those sent, null
    /// clears). No other field can be set, and students cannot grade.
    private func grade(_ request: Request, _ context: AppRequestContext, replacing: Bool) async throws -> Response {
        let user = try context.requireUser()
        var record = try await visibleSubmission(context)
        guard user.role != .student else {
            throw APIError.forbidden("Students cannot grade; to hand in a new version, POST the notebook again.")
        }
        let change = try Self.gradeChange(try await request.readBody(upTo: Request.standardBodyLimit))
        if replacing || change.grade != nil { record.grade = change.grade ?? nil }
        if replacing || change.feedback != nil { record.feedback = change.feedback ?? nil }
        try await submissions.grade(
            record, grade: record.grade, feedback: record.feedback, graderID: user.id, now: Date(),
            audit: AuditNote("grade", "submission", details: record.grade.map { "grade \($0)" } ?? "grade cleared", context: context))
        guard let graded = try await submissions.find(id: record.id) else { throw APIError.notFound("No submission with this id.") }
        if let grade = graded.grade, let assignment = try await assignments.find(id: graded.assignmentID) {
            notifier.send(
                Notice(
                    kind: "assignment_graded", message: "\(assignment.title): graded \(Self.format(grade))/100", from: user.email,
                    at: Timestamp.format(Date()), assignmentId: assignment.id, submissionId: graded.id, title: assignment.title, grade: grade),
                on: NoticeChannels.notifications(graded.studentID))
        }
        return try JSONResponse(SubmissionView(graded)).response
    }

    /// The submission in the path if the caller may see it: its student, its class's
    /// instructor (another instructor: 403), an admin; another student gets a 404.
    private func visibleSubmission(_ context: AppRequestContext) async throws -> SubmissionRecord {
        let user = try context.requireUser()
        guard let id = context.parameters.get("id", as: Int64.self), let record = try await submissions.find(id: id) else {
            throw APIError.notFound("No submission with this id.")
        }
        switch user.role {
        case .admin:
            return record
        case .instructor:
            guard let owning = try await classes.find(id: record.classID), try await classes.isTaught(owning, by: user) else {
                throw APIError.forbidden("This submission belongs to another instructor's class.")
            }
            return record
        case .student:
            guard record.studentID == user.id else { throw APIError.notFound("No submission with this id.") }
            return record
        }
    }

    /// A Jupyter notebook: a JSON object with `nbformat` (a number), `metadata` (an object) and
    /// `cells` (an array). Anything else is refused with 422, nothing stored.
    static func validateNotebook(_ body: Data) throws {
        let notebook = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        guard let notebook else {
            throw APIError.unprocessable(
                "The body is not a Jupyter notebook: it is not a JSON object.", code: "not_a_notebook", details: ["field": .string("notebook")])
        }
        for (field, valid) in [
            ("nbformat", notebook["nbformat"] is NSNumber), ("metadata", notebook["metadata"] is [String: Any]), ("cells", notebook["cells"] is [Any]),
        ]
        where !valid {
            throw APIError.unprocessable(
                "The body is not a Jupyter notebook: '\(field)' is missing or of the wrong type.", code: "not_a_notebook", details: ["field": .string(field)])
        }
    }

    /// The fields of a grading request: nil when absent, `.some(nil)` when null.
    static func gradeChange(_ body: Data) throws -> (grade: Double??, feedback: String??) {
        guard case .object(let object) = try? JSONValue(parsing: body) else {
            throw APIError.badRequest("The body is not a JSON object.", code: "malformed")
        }
        if let other = object.keys.sorted().first(where: { $0 != "grade" && $0 != "feedback" }) {
            throw APIError.unprocessable("'\(other)' cannot be set: grading changes only grade and feedback.", details: ["field": .string(other)])
        }
        var change: (grade: Double??, feedback: String??) = (nil, nil)
        let grade: Double?
        switch object["grade"] {
        case nil: grade = nil
        case .null:
            grade = nil
            change.grade = .some(nil)
        case .integer(let number): grade = Double(number)
        case .number(let number): grade = number
        default:
            throw APIError.badRequest("Field 'grade' expected a number.", code: "malformed", details: ["field": .string("grade")])
        }
        if let grade {
            guard (0...100).contains(grade) else {
                throw APIError.unprocessable("A grade is a number from 0 to 100.", details: ["field": .string("grade")])
            }
            change.grade = grade
        }
        switch object["feedback"] {
        case nil: break
        case .null: change.feedback = .some(nil)
        case .string(let text): change.feedback = try ClassesController.optional(text, field: "feedback", max: 10_000)
        default:
            throw APIError.badRequest("Field 'feedback' expected a string.", code: "malformed", details: ["field": .string("feedback")])
        }
        return change
    }

    static func id(_ text: String?, field: String) throws -> Int64? {
        guard let text else { return nil }
        guard let id = Int64(text) else { throw APIError.badRequest("'\(field)' is a number.", details: ["field": .string(field)]) }
        return id
    }

    static func format(_ grade: Double) -> String {
        grade == grade.rounded() ? String(Int64(grade)) : String(grade)
    }
}
