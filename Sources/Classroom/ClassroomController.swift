import Foundation
import Hummingbird
import PulseboardCourses
import PulseboardHTTP
import PulseboardKernel

/// What the classroom learned from JupyterLab, for the people it concerns: a student's own
/// progress, a class's progress (per student or per team), its notebooks, a student's timeline,
/// the events as CSV, and resolving help requests.
package struct ClassroomController {
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
    let channel: ClassChannel

    package init(classes: Classes, progress: ClassProgress, channel: ClassChannel) {
        self.classes = classes
        self.progress = progress
        self.channel = channel
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/me/progress") { _, context -> Response in
            let user = try context.requireUser()
            var mine: [MyClass] = []
            for taken in try await classes.of(studentEmail: user.email) {
                if let student = try await progress.students(classID: taken.id, email: user.email.lowercased()).first {
                    mine.append(MyClass(classId: taken.id, className: taken.name, progress: student))
                }
            }
            return try JSONResponse(["classes": mine]).response
        }
        router.get("/classes/{id}/progress") { request, context -> Response in
            let record = try await ClassesController.authorizedClass(context, in: classes)
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
        router.get("/classes/{id}/notebooks") { _, context -> Response in
            let record = try await ClassesController.authorizedClass(context, in: classes)
            return try JSONResponse(["notebooks": try await progress.notebooks(classID: record.id)]).response
        }
        router.get("/classes/{id}/students/{email}/timeline") { request, context -> Response in
            let record = try await ClassesController.authorizedClass(context, in: classes)
            let email = try ClassesController.email(context)
            let page = try EventPage(request)
            let session = request.uri.queryParameters.get("sessionId")
            let events = try await classes.store.select(
                EventLog.range(
                    classID: record.id, email: email, sessionID: session, fromMs: page.fromMs, toMs: page.toMs, limit: page.limit, offset: page.offset),
                as: EventLog.Stored.self)
            return try JSONResponse(Timeline(email: email, limit: page.limit, offset: page.offset, events: try events.map { try $0.object() })).response
        }
        router.get("/classes/{id}/students/{email}/sessions") { _, context -> Response in
            let record = try await ClassesController.authorizedClass(context, in: classes)
            let email = try ClassesController.email(context)
            return try JSONResponse(["sessions": try await progress.sessions(classID: record.id, email: email)]).response
        }
        router.get("/classes/{id}/events.csv") { request, context -> Response in
            let record = try await ClassesController.authorizedClass(context, in: classes)
            let page = try EventPage(request, maxLimit: 100_000, defaultLimit: 100_000)
            let events = try await classes.store.select(
                EventLog.range(classID: record.id, email: nil, fromMs: page.fromMs, toMs: page.toMs, limit: page.limit, offset: page.offset),
                as: EventLog.Stored.self)
            let csv = try EventCSV.render(try events.map { try $0.object() })
            return .csvDownload(csv, filename: "class-\(record.id)-events.csv")
        }
        router.post("/classes/{id}/help/{requestId}/resolve") { _, context -> Response in
            let record = try await ClassesController.authorizedClass(context, in: classes)
            let helper = try context.requireUser()
            guard let requestID = context.parameters.get("requestId", as: Int64.self),
                try await progress.resolveHelp(classID: record.id, requestID: requestID, helperID: helper.id, now: Date()),
                let email = try await progress.helpRequestStudent(classID: record.id, requestID: requestID)
            else {
                throw APIError.notFound("No open help request with this id in this class.")
            }
            await channel.studentsChanged([record.id: [email]])
            return Response(status: .noContent)
        }
        return router
    }
}

/// A student's events, as `GET /classes/{id}/students/{email}/timeline` answers them.
struct Timeline: Encodable {
    var email: String
    var limit: Int
    var offset: Int
    var events: [[String: JSONValue]]
}

/// `from`, `to` (ISO-8601; the last 24 hours by default), `limit` and `offset` of event listings.
package struct EventPage {
    var fromMs: Int64
    var toMs: Int64
    var limit: Int
    var offset: Int

    init(_ request: Request, maxLimit: Int = 1_000, defaultLimit: Int = 100) throws {
        let query = request.uri.queryParameters
        toMs = try QueryParameter.time(query.get("to"), field: "to") ?? Date().millisecondsSince1970 + 1
        fromMs = try QueryParameter.time(query.get("from"), field: "from") ?? toMs - 86_400_000
        guard fromMs <= toMs else { throw APIError.badRequest("'from' is after 'to'.", details: ["field": .string("from")]) }
        limit = try QueryParameter.integer(query.get("limit"), field: "limit", range: 1...maxLimit) ?? defaultLimit
        offset = try QueryParameter.integer(query.get("offset"), field: "offset", range: 0...Int(Int32.max)) ?? 0
    }
}
