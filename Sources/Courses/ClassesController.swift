import Foundation
import Hummingbird
import PulseboardAccounts
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel
import PulseboardTracing

/// Classes and their learning-progress picture, for their instructor and admins:
/// `POST/GET /api/v1/classes`, `GET/PUT/PATCH/DELETE /api/v1/classes/{id}`, the roster (one by
/// one or from a CSV upload), token rotation, progress (per student or per team), notebooks, a
/// student's timeline, CSV export and resolving help requests.
package struct ClassesController {
    struct CreateClass: Decodable {
        var name: String
        var code: String
        var description: String?
    }

    struct ClassView: Encodable {
        var id: Int64
        var name: String
        var code: String
        var description: String
        var ownerId: Int64
        var holdNewStudents: Bool
        var tokenPrefix: String
        /// Until when the token replaced last still works, while it does.
        var previousTokenUntil: String?
        var createdAt: String
        var updatedAt: String
        /// Only when a token was just issued: the secret and the serverUrl for the extension.
        var ingestToken: String?
        var serverUrl: String?

        init(_ record: ClassRecord, connection: Connection? = nil) {
            id = record.id
            name = record.name
            code = record.code
            description = record.description
            ownerId = record.ownerID
            holdNewStudents = record.holdNewStudents
            tokenPrefix = record.tokenPrefix
            previousTokenUntil = record.previousTokenUntil.flatMap { $0 > Date() ? Timestamp.format($0) : nil }
            createdAt = Timestamp.format(record.createdAt)
            updatedAt = Timestamp.format(record.updatedAt)
            ingestToken = connection?.ingestToken
            serverUrl = connection?.serverUrl
        }
    }

    /// What a student's extension needs: the class's token and the absolute `serverUrl` carrying it.
    struct Connection: Encodable {
        var ingestToken: String
        var serverUrl: String
        /// Until when the replaced token still works, while it does.
        var previousTokenUntil: String?
    }

    /// PUT needs every field but the description; PATCH any. Only admins may set `ownerId`.
    struct ClassChange: Decodable {
        var name: String?
        var code: String?
        var description: String?
        var ownerId: Int64?
        var holdNewStudents: Bool?
    }

    struct ClassList: Encodable {
        var classes: [ClassView]
        var total: Int64
        var skip: Int
        var limit: Int
    }

    struct NewInstructor: Decodable {
        var email: String
    }

    struct Instructors: Encodable {
        var instructors: [Classes.Instructor]
    }

    struct NewMember: Decodable {
        var email: String
        var name: String?
        var team: String?
    }

    struct Roster: Encodable {
        var students: [Enrolment.Member]
    }

    struct UploadReport: Encodable {
        var enrolled: Int
        var alreadyEnrolled: Int
        var rejected: [RosterCSV.Rejection]
    }

    struct StudentClass: Encodable {
        var id: Int64
        var name: String
        var code: String
    }

    struct StudentClasses: Encodable {
        var email: String
        var classes: [StudentClass]
    }

    let classes: Classes
    let enrolment: Enrolment
    /// The server as students reach it (`--public-url`); nil: the request's Host.
    let publicURL: String?
    /// Whether a proxy serves this server over HTTPS (the scheme of a Host-derived address).
    let behindTLS: Bool
    /// Rings the open WebSockets after a change of who teaches a class.
    let accessChanged: @Sendable () -> Void
    /// Where the steps of a roster upload are recorded (nil: not recorded).
    let log: OperationsLog?

    package init(
        classes: Classes, enrolment: Enrolment, publicURL: String?, behindTLS: Bool, log: OperationsLog?, accessChanged: @escaping @Sendable () -> Void
    ) {
        self.log = log
        self.classes = classes
        self.enrolment = enrolment
        self.publicURL = publicURL
        self.behindTLS = behindTLS
        self.accessChanged = accessChanged
    }

    /// The token with the `serverUrl` a student pastes: on `--public-url` when set, else on the
    /// address this request was sent to (the instructor's browser reaches the server there too).
    func connection(_ record: ClassRecord, token: String, request: Request, context: AppRequestContext) -> Connection {
        let scheme = context.forwardedProto ?? (behindTLS ? "https" : "http")
        let base = publicURL ?? "\(scheme)://\(request.head.authority ?? "localhost")"
        return Connection(ingestToken: token, serverUrl: ServerURL.events(base: base, token: token), previousTokenUntil: ClassView(record).previousTokenUntil)
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/classes") { request, context -> Response in
            let user = try context.requireUser([.admin, .instructor])
            let body = try await request.decode(as: CreateClass.self, context: context)
            let name = try Self.validated(name: body.name)
            let code = try Self.validated(code: body.code)
            let token = IssuedSecret.classToken()
            do {
                let record = try await classes.create(
                    name: name, code: code, description: body.description ?? "", ownerID: user.id, token: token, now: Date(),
                    audit: AuditNote("create", "class", details: "code \(code)", context: context))
                return try JSONResponse(
                    ClassView(record, connection: connection(record, token: token.secret, request: request, context: context)), status: .created
                )
                .response
            } catch StoreError.conflict {
                throw APIError.conflict("The class code '\(code)' is taken.")
            }
        }
        router.get("/classes") { request, context -> Response in
            let user = try context.requireUser([.admin, .instructor])
            let query = request.uri.queryParameters
            let skip = try QueryParameter.integer(query.get("skip"), field: "skip", range: 0...Int(Int32.max)) ?? 0
            let limit = try QueryParameter.integer(query.get("limit"), field: "limit", range: 1...500) ?? 100
            let instructor = user.role == .admin ? nil : user.id
            let list = try await classes.list(instructorID: instructor, skip: skip, limit: limit)
            let total = try await classes.count(instructorID: instructor)
            return try JSONResponse(ClassList(classes: list.map { ClassView($0) }, total: total, skip: skip, limit: limit)).response
        }
        router.get("/students/{email}/classes") { _, context -> Response in
            let user = try context.requireUser()
            let email = try Self.email(context)
            // A student sees only their own; an instructor only the classes they teach.
            guard user.role != .student || email == user.email.lowercased() else { throw APIError.notFound("No such student.") }
            var visible: [StudentClass] = []
            for taken in try await classes.of(studentEmail: email) {
                guard let record = try await classes.find(id: taken.id) else { continue }
                if user.role == .instructor, try await !classes.isTaught(record, by: user) { continue }
                visible.append(StudentClass(id: record.id, name: record.name, code: record.code))
            }
            return try JSONResponse(StudentClasses(email: email, classes: visible)).response
        }
        router.get("/classes/{id}") { _, context -> Response in
            try JSONResponse(ClassView(try await authorizedClass(context))).response
        }
        router.put("/classes/{id}") { request, context -> Response in
            try await change(request, context, replacing: true)
        }
        router.patch("/classes/{id}") { request, context -> Response in
            try await change(request, context, replacing: false)
        }
        router.delete("/classes/{id}") { _, context -> Response in
            let record = try await ownedClass(context)
            try await classes.delete(id: record.id, audit: AuditNote("delete", "class", details: "code \(record.code)", context: context))
            accessChanged()
            return Response(status: .noContent)
        }
        router.get("/classes/{id}/instructors") { _, context -> Response in
            let record = try await authorizedClass(context)
            return try JSONResponse(Instructors(instructors: try await classes.instructors(of: record))).response
        }
        router.post("/classes/{id}/instructors") { request, context -> Response in
            let record = try await ownedClass(context)
            let body = try await request.decode(as: NewInstructor.self, context: context)
            let email = try UsersController.validated(email: body.email)
            guard let colleague = try await Accounts(store: classes.store).user(email: email) else {
                throw APIError(.notFound, code: "not_found", message: "No user with the email \(email).", details: ["field": .string("email")])
            }
            guard colleague.role == .instructor else {
                throw APIError.unprocessable("Only instructors teach classes (admins see every class anyway).", details: ["field": .string("email")])
            }
            guard colleague.id != record.ownerID else {
                throw APIError.unprocessable("This is the class's owner.", details: ["field": .string("email")])
            }
            let added = try await classes.addInstructor(
                classID: record.id, userID: colleague.id, now: Date(), audit: AuditNote("add-instructor", "class", details: email, context: context))
            return try JSONResponse(Instructors(instructors: try await classes.instructors(of: record)), status: added ? .created : .ok).response
        }
        router.delete("/classes/{id}/instructors/{userId}") { _, context -> Response in
            let record = try await ownedClass(context)
            guard let userID = context.parameters.get("userId", as: Int64.self),
                try await classes.removeInstructor(
                    classID: record.id, userID: userID, audit: AuditNote("remove-instructor", "class", details: "user \(userID)", context: context))
            else {
                throw APIError.notFound("No such co-instructor of this class.")
            }
            accessChanged()
            return Response(status: .noContent)
        }
        router.get("/classes/{id}/students") { _, context -> Response in
            let record = try await authorizedClass(context)
            return try JSONResponse(Roster(students: try await enrolment.roster(classID: record.id))).response
        }
        router.post("/classes/{id}/students") { request, context -> Response in
            let record = try await authorizedClass(context)
            let body = try await request.decode(as: NewMember.self, context: context)
            let email = try UsersController.validated(email: body.email)
            let name = try Self.optional(body.name, field: "name", max: 200)
            let team = try Self.optional(body.team, field: "team", max: 100)
            let added = try await enrolment.enrol(
                classID: record.id, email: email, name: name, team: team, now: Date(), audit: AuditNote("enrol", "enrolment", context: context))
            let member = try await enrolment.roster(classID: record.id).first { $0.email == email }
            return try JSONResponse(Roster(students: member.map { [$0] } ?? []), status: added ? .created : .ok).response
        }
        router.post("/classes/{id}/students/{email}/accept") { _, context -> Response in
            let record = try await authorizedClass(context)
            let email = try Self.email(context)
            guard try await enrolment.accept(classID: record.id, email: email, audit: AuditNote("accept", "enrolment", context: context)) else {
                throw APIError.notFound("No student of this class waits to be accepted with this email.")
            }
            return try JSONResponse(Roster(students: try await enrolment.roster(classID: record.id).filter { $0.email == email })).response
        }
        router.delete("/classes/{id}/students/{email}") { _, context -> Response in
            let record = try await authorizedClass(context)
            let email = try Self.email(context)
            guard try await enrolment.unenrol(classID: record.id, email: email, audit: AuditNote("unenrol", "enrolment", context: context)) else {
                throw APIError.notFound("No such student in this class.")
            }
            return Response(status: .noContent)
        }
        router.post("/classes/{id}/students/csv") { request, context -> Response in
            let record = try await authorizedClass(context)
            let body = try await request.readBody(upTo: 1 << 20)
            var task = TaskRecorder(log: log, traceID: context.traceID, task: "csv enrolment")
            let parsed: (rows: [RosterCSV.Row], rejected: [RosterCSV.Rejection]) = try await task.step(
                "parse", input: ["classId": .integer(record.id), "bytes": .integer(Int64(body.count))]
            ) {
                guard let text = String(data: body, encoding: .utf8) else {
                    throw APIError.badRequest("The upload is not UTF-8 text.", code: "malformed")
                }
                do {
                    return try RosterCSV.parse(text)
                } catch let RosterCSV.Failure.unreadable(reason) {
                    throw APIError.unprocessable(reason, details: ["field": .string("file")])
                }
            } output: {
                ["rows": .integer(Int64($0.rows.count)), "rejected": .integer(Int64($0.rejected.count))]
            }
            // Every valid row in one transaction: an upload is enrolled whole or not at all.
            let new = try await task.step("enrol", input: ["rows": .integer(Int64(parsed.rows.count))]) {
                try await enrolment.enrol(
                    classID: record.id, rows: parsed.rows, now: Date(),
                    audit: AuditNote("upload", "enrolment", details: "\(parsed.rows.count) rows, \(parsed.rejected.count) rejected", context: context))
            } output: {
                ["enrolled": .integer(Int64($0.filter { $0 }.count)), "alreadyEnrolled": .integer(Int64($0.filter { !$0 }.count))]
            }
            let added = new.filter { $0 }.count
            let report = UploadReport(enrolled: added, alreadyEnrolled: new.count - added, rejected: parsed.rejected.sorted { $0.line < $1.line })
            return try JSONResponse(report).response
        }
        router.get("/classes/{id}/token") { request, context -> Response in
            let record = try await authorizedClass(context)
            guard let token = try await classes.ingestToken(classID: record.id) else {
                throw APIError.notFound("This class's token was issued before tokens were kept: replace it once to see it here.")
            }
            return try JSONResponse(connection(record, token: token, request: request, context: context)).response
        }
        router.post("/classes/{id}/token") { request, context -> Response in
            let record = try await authorizedClass(context)
            let hours = try QueryParameter.integer(request.uri.queryParameters.get("graceHours"), field: "graceHours", range: 0...168)
            let grace = hours.map { Duration.seconds($0 * 3600) } ?? classTokenGrace
            let token = IssuedSecret.classToken()
            try await classes.rotateToken(
                classID: record.id, token: token, grace: grace, now: Date(),
                audit: AuditNote("rotate-token", "class", details: "old token works \(Int(grace.seconds / 3600)) h", context: context))
            let rotated = try await classes.find(id: record.id) ?? record
            return try JSONResponse(ClassView(rotated, connection: connection(rotated, token: token.secret, request: request, context: context))).response
        }
        return router
    }

    private func change(_ request: Request, _ context: AppRequestContext, replacing: Bool) async throws -> Response {
        let user = try context.requireUser([.admin, .instructor])
        var record = try await authorizedClass(context)
        let body = try await request.decode(as: ClassChange.self, context: context)
        if replacing, body.name == nil || body.code == nil {
            throw APIError.badRequest(
                "PUT replaces the class: send name and code (and description).", details: ["field": .string(body.name == nil ? "name" : "code")])
        }
        if let name = body.name { record.name = try Self.validated(name: name) }
        if let code = body.code { record.code = try Self.validated(code: code) }
        if body.description != nil || replacing {
            record.description = try Self.optional(body.description, field: "description", max: 5_000) ?? ""
        }
        // Kept by a PUT that leaves it out: it is a policy of the class, not part of its description.
        if let hold = body.holdNewStudents { record.holdNewStudents = hold }
        if let owner = body.ownerId {
            guard user.role == .admin else { throw APIError.forbidden("Only admins may give a class to another owner.") }
            guard let newOwner = try await Accounts(store: classes.store).user(id: owner), newOwner.role != .student else {
                throw APIError.unprocessable("The owner must be an instructor or an admin.", details: ["field": .string("ownerId")])
            }
            record.ownerID = owner
        }
        do {
            try await classes.update(
                record, now: Date(), audit: AuditNote(replacing ? "replace" : "change", "class", details: "owner \(record.ownerID)", context: context))
        } catch StoreError.conflict {
            throw APIError.conflict("The class code '\(record.code)' is taken.")
        }
        if body.ownerId != nil { accessChanged() }
        return try JSONResponse(ClassView(try await classes.find(id: record.id) ?? record)).response
    }

    static func validated(name: String) throws -> String {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(name.count) else {
            throw APIError.unprocessable("A class name has 1 to 200 characters.", details: ["field": .string("name")])
        }
        return name
    }

    static func validated(code: String) throws -> String {
        let code = code.trimmingCharacters(in: .whitespaces)
        guard (1...50).contains(code.count), code.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw APIError.unprocessable("A class code has 1 to 50 letters, digits, '-', '_' or '.'.", details: ["field": .string("code")])
        }
        return code
    }

    /// A trimmed optional text of at most `max` characters (empty is none).
    static func optional(_ text: String?, field: String, max: Int) throws -> String? {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        guard text.count <= max else {
            throw APIError.unprocessable("'\(field)' has at most \(max) characters.", details: ["field": .string(field)])
        }
        return text
    }

    /// The class in the path, if the caller may run it: admins any, instructors those they
    /// teach (another instructor's class is 403), students none.
    private func authorizedClass(_ context: AppRequestContext) async throws -> ClassRecord {
        try await Self.authorizedClass(context, in: classes)
    }

    /// The class in the path, if the caller owns it (or is an admin): deleting the class and
    /// choosing its co-instructors are the owner's.
    private func ownedClass(_ context: AppRequestContext) async throws -> ClassRecord {
        let user = try context.requireUser([.admin, .instructor])
        let record = try await authorizedClass(context)
        guard user.role == .admin || record.ownerID == user.id else { throw APIError.forbidden("Only the class's owner may do this.") }
        return record
    }

    /// The `{email}` path parameter, decoded and normalised.
    package static func email(_ context: AppRequestContext) throws -> String {
        let raw = try context.parameters.require("email")
        return AuthService.normalise(email: raw.removingPercentEncoding ?? raw)
    }

    /// The same check for the class pages and the classroom's routes.
    package static func authorizedClass(_ context: AppRequestContext, in classes: Classes) async throws -> ClassRecord {
        let user = try context.requireUser([.admin, .instructor])
        guard let id = context.parameters.get("id", as: Int64.self), let record = try await classes.find(id: id) else {
            throw APIError.notFound("No class with this id.")
        }
        guard try await classes.isTaught(record, by: user) else { throw APIError.forbidden("This is another instructor's class.") }
        return record
    }
}
