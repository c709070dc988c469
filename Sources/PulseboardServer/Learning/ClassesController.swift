import Foundation
import Hummingbird

/// Classes and their learning-progress picture, for their instructor and admins:
/// `POST/GET /api/v1/classes`, `GET /api/v1/classes/{id}`, token rotation, progress (per student
/// or per team), notebooks, a student's timeline, CSV export and resolving help requests.
struct ClassesController {
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
        var tokenPrefix: String
        var createdAt: String
        var updatedAt: String
        /// Only when a token was just issued: the secret and the serverUrl for the extension.
        var ingestToken: String?
        var serverUrl: String?

        init(_ record: ClassRecord, token: String? = nil) {
            id = record.id
            name = record.name
            code = record.code
            description = record.description
            ownerId = record.ownerID
            tokenPrefix = record.tokenPrefix
            createdAt = Timestamp.format(record.createdAt)
            updatedAt = Timestamp.format(record.updatedAt)
            ingestToken = token
            serverUrl = token.map { "/api/v1/events?token=\($0)" }
        }
    }

    struct ClassList: Encodable {
        var classes: [ClassView]
        var total: Int
    }

    struct Progress: Encodable {
        var classId: Int64
        var generatedAt: String
        var students: [StudentProgress]?
        var teams: [Team]?
    }

    struct Team: Encodable {
        var team: String
        var students: [StudentProgress]
    }

    struct MyClass: Encodable {
        var classId: Int64
        var className: String
        var progress: StudentProgress
    }

    let classes: Classes
    let progress: ClassProgress
    let hub: Hub

    func addRoutes(to router: some RouterMethods<AppRequestContext>) {
        router.post("/api/v1/classes") { request, context -> Response in
            let user = try context.requireUser([.admin, .instructor])
            let body = try await request.decode(as: CreateClass.self, context: context)
            let name = body.name.trimmingCharacters(in: .whitespaces)
            let code = body.code.trimmingCharacters(in: .whitespaces)
            guard (1...200).contains(name.count) else {
                throw APIError.unprocessable("A class name has 1 to 200 characters.", details: ["field": .string("name")])
            }
            guard (1...50).contains(code.count), code.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw APIError.unprocessable("A class code has 1 to 50 letters, digits, '-', '_' or '.'.", details: ["field": .string("code")])
            }
            let token = IssuedSecret.classToken()
            do {
                let record = try await classes.create(
                    name: name, code: code, description: body.description ?? "", ownerID: user.id, token: token, now: Date())
                return try JSONResponse(ClassView(record, token: token.secret), status: .created).response
            } catch StoreError.conflict {
                throw APIError.conflict("The class code '\(code)' is taken.")
            }
        }
        router.get("/api/v1/classes") { _, context -> Response in
            let user = try context.requireUser([.admin, .instructor])
            let list = try await classes.list(ownerID: user.role == .admin ? nil : user.id)
            return try JSONResponse(ClassList(classes: list.map { ClassView($0) }, total: list.count)).response
        }
        router.get("/api/v1/me/progress") { _, context -> Response in
            let user = try context.requireUser()
            var mine: [MyClass] = []
            for (id, name) in try await classes.of(studentEmail: user.email) {
                if let student = try await progress.students(classID: id, email: user.email.lowercased()).first {
                    mine.append(MyClass(classId: id, className: name, progress: student))
                }
            }
            return try JSONResponse(["classes": mine]).response
        }
        router.get("/api/v1/classes/{id}") { _, context -> Response in
            try JSONResponse(ClassView(try await authorizedClass(context))).response
        }
        router.post("/api/v1/classes/{id}/token") { _, context -> Response in
            let record = try await authorizedClass(context)
            let token = IssuedSecret.classToken()
            try await classes.rotateToken(classID: record.id, token: token, now: Date())
            let rotated = try await classes.find(id: record.id) ?? record
            return try JSONResponse(ClassView(rotated, token: token.secret)).response
        }
        router.get("/api/v1/classes/{id}/progress") { request, context -> Response in
            let record = try await authorizedClass(context)
            let students = try await progress.students(classID: record.id)
            var answer = Progress(classId: record.id, generatedAt: Timestamp.format(Date()))
            switch request.uri.queryParameters.get("groupBy") {
            case nil: answer.students = students
            case "team":
                answer.teams = Dictionary(grouping: students) { $0.team ?? "" }
                    .map { Team(team: $0.key, students: $0.value) }
                    .sorted { $0.team < $1.team }
            default:
                throw APIError.badRequest("'groupBy' is 'team' or absent.", details: ["field": .string("groupBy")])
            }
            return try JSONResponse(answer).response
        }
        router.get("/api/v1/classes/{id}/notebooks") { _, context -> Response in
            let record = try await authorizedClass(context)
            return try JSONResponse(["notebooks": try await progress.notebooks(classID: record.id)]).response
        }
        router.get("/api/v1/classes/{id}/students/{email}/timeline") { request, context -> Response in
            let record = try await authorizedClass(context)
            let raw = try context.parameters.require("email")
            let email = (raw.removingPercentEncoding ?? raw).lowercased()
            let page = try EventPage(request)
            let events = try await classes.store.select(
                EventLog.range(classID: record.id, email: email, fromMs: page.fromMs, toMs: page.toMs, limit: page.limit, offset: page.offset))
            let objects = events.compactMap { row in row[2].string.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } }
            return try Response.json(["email": email, "limit": page.limit, "offset": page.offset, "events": objects] as [String: Any])
        }
        router.get("/api/v1/classes/{id}/events.csv") { request, context -> Response in
            let record = try await authorizedClass(context)
            let page = try EventPage(request, maxLimit: 100_000, defaultLimit: 100_000)
            let rows = try await classes.store.select(
                EventLog.range(classID: record.id, email: nil, fromMs: page.fromMs, toMs: page.toMs, limit: page.limit, offset: page.offset))
            let csv = EventCSV.render(rows.compactMap { $0[2].string })
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/csv; charset=utf-8",
                    .contentDisposition: "attachment; filename=\"class-\(record.id)-events.csv\"",
                ],
                body: .init(byteBuffer: ByteBuffer(string: csv))
            )
        }
        router.post("/api/v1/classes/{id}/help/{requestId}/resolve") { _, context -> Response in
            let record = try await authorizedClass(context)
            guard let requestID = context.parameters.get("requestId", as: Int64.self),
                try await progress.resolveHelp(classID: record.id, requestID: requestID, now: Date()),
                let email = try await progress.helpRequestStudent(classID: record.id, requestID: requestID)
            else {
                throw APIError.notFound("No open help request with this id in this class.")
            }
            if let student = try await progress.students(classID: record.id, email: email).first {
                hub.publish(channel: LiveChannels.classView(record.id), data: ClassUpdate.student(student))
            }
            return Response(status: .noContent)
        }
    }

    /// The class in the path, if the caller may see it: admins any, instructors their own
    /// (another instructor's class is 403), students none.
    private func authorizedClass(_ context: AppRequestContext) async throws -> ClassRecord {
        let user = try context.requireUser([.admin, .instructor])
        guard let id = context.parameters.get("id", as: Int64.self), let record = try await classes.find(id: id) else {
            throw APIError.notFound("No class with this id.")
        }
        guard user.role == .admin || record.ownerID == user.id else { throw APIError.forbidden("This is another instructor's class.") }
        return record
    }
}

/// `from`, `to` (ISO-8601; the last 24 hours by default), `limit` and `offset` of event listings.
struct EventPage {
    var fromMs: Int64
    var toMs: Int64
    var limit: Int
    var offset: Int

    init(_ request: Request, maxLimit: Int = 1_000, defaultLimit: Int = 100) throws {
        let query = request.uri.queryParameters
        toMs = try HistoryController.time(query.get("to"), field: "to") ?? Date().millisecondsSince1970 + 1
        fromMs = try HistoryController.time(query.get("from"), field: "from") ?? toMs - 86_400_000
        guard fromMs <= toMs else { throw APIError.badRequest("'from' is after 'to'.", details: ["field": .string("from")]) }
        limit = try HistoryController.integer(query.get("limit"), field: "limit", range: 1...maxLimit) ?? defaultLimit
        offset = try HistoryController.integer(query.get("offset"), field: "offset", range: 0...Int(Int32.max)) ?? 0
    }
}

/// The raw events of a class as CSV, one row per event, the extension's field names as columns.
enum EventCSV {
    static let columns = [
        "eventId", "eventType", "eventTime", "emailAddress", "userName", "teamName", "sessionId", "notebookPath", "cellId", "cellIndex",
        "executionCount", "hasError", "errorMessage", "executionDurationMs",
    ]

    static func render(_ payloads: [String]) -> String {
        var lines = [columns.joined(separator: ",")]
        for payload in payloads {
            let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] ?? [:]
            lines.append(columns.map { field(object[$0]) }.joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func field(_ value: Any?) -> String {
        let text: String =
            switch value {
            case nil, is NSNull: ""
            case let string as String: string
            case let number as NSNumber: number.objCType.pointee == CChar(UInt8(ascii: "c")) ? (number.boolValue ? "true" : "false") : "\(number)"
            default: ""
            }
        guard text.contains(where: { ",\"\r\n".contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
