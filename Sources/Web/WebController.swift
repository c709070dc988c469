import Foundation
import Hummingbird
import Mustache
import PulseboardAccounts
import PulseboardCourses
import PulseboardHTTP
import PulseboardKernel

/// The browser side: the login page, the dashboard (a student's own page for students), the
/// classes, a class's live view, an assignment's submissions and grading, logout; the pages'
/// own static files come through `staticFiles()`.
/// Pages are rendered on the server (Mustache); the dashboard script is ours, small, with no
/// third-party code, so the page works offline.
package struct WebController {
    let auth: AuthService
    let classes: Classes
    let assignments: Assignments
    let idleMinutes: Int
    let templates: MustacheLibrary
    let secureCookies: Bool

    package init(
        auth: AuthService, classes: Classes, assignments: Assignments, idleMinutes: Int, templates: MustacheLibrary, secureCookies: Bool
    ) {
        self.auth = auth
        self.classes = classes
        self.assignments = assignments
        self.idleMinutes = idleMinutes
        self.templates = templates
        self.secureCookies = secureCookies
    }

    /// The pages, and the layout and top bar they are built from (Resources/templates).
    static let templateNames = ["layout", "topbar", "login", "dashboard", "classes", "class", "assignment", "logs"]

    /// The page templates shipped in this target's Resources folder; one missing is a startup error.
    package static func loadTemplates() async throws -> MustacheLibrary {
        let library = try await MustacheLibrary(directory: try Resources.url("templates", in: .module).path)
        if let missing = templateNames.first(where: { library.getTemplate(named: $0) == nil }) {
            throw ConfigurationError("The page template \(missing).mustache is missing from the build.")
        }
        return library
    }

    /// The pages' scripts, styles and icon (Resources/static) below `/static/`, with ETag,
    /// Last-Modified, HEAD and ranges; browsers may keep them five minutes.
    package static func staticFiles() throws -> FileMiddleware<AppRequestContext, LocalFileSystem> {
        FileMiddleware(
            try Resources.url("static", in: .module).path, urlBasePath: "/static",
            cacheControl: .init([(MediaType(type: .any), [.public, .maxAge(300)])]))
    }

    struct LoginForm: Decodable {
        var email: String?
        var password: String?
        var csrf: String?
    }

    struct LogoutForm: Decodable {
        var csrf: String?
    }

    /// Where a user lands after logging in: instructors on their classes, the others on the
    /// dashboard (host metrics for admins, their own page for students).
    static func home(of role: Role) -> String {
        role == .instructor ? "/classes" : "/dashboard"
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.get("/") { request, context -> Response in
            if case .user(let user) = context.principal { return .redirect(to: Self.home(of: user.role), type: .found) }
            return renderLogin(request, error: nil, status: .ok)
        }
        router.post("/login") { request, context -> Response in
            let form = try await Self.decodeForm(LoginForm.self, request)
            guard CSRF.matches(request, form.csrf) else {
                return renderLogin(request, error: "Your form expired; please try again.", status: .forbidden)
            }
            do {
                let user = try await auth.login(email: form.email ?? "", password: form.password ?? "", clientAddress: context.clientAddress)
                var response = Response.redirect(to: Self.home(of: user.role), type: .normal)
                response.setCookie(sessionCookie(try await auth.openBrowserSession(for: user), maxAge: Int(auth.sessionLifetime.seconds)))
                return response
            } catch let error as APIError where error.status == .unauthorized || error.status == .tooManyRequests {
                var response = renderLogin(request, error: error.message, status: error.status)
                response.headers.append(contentsOf: error.headers.filter { $0.name == .retryAfter })
                return response
            }
        }
        router.post("/logout") { request, context -> Response in
            let form = try await Self.decodeForm(LogoutForm.self, request)
            guard CSRF.matches(request, form.csrf) else {
                throw APIError.forbidden("The form's CSRF token does not match.")
            }
            if let session = request.cookies[AuthMiddleware.sessionCookie]?.value {
                try await auth.logOut(session)
            }
            var response = Response.redirect(to: "/", type: .normal)
            response.setCookie(sessionCookie("", maxAge: 0))
            return response
        }
        router.get("/dashboard") { request, context -> Response in
            guard case .user(let user) = context.principal else { return .redirect(to: "/", type: .found) }
            return page(request, "dashboard") { csrf in
                DashboardPage(
                    email: user.email, userID: user.id, role: user.role.rawValue, csrf: csrf, canSeeMetrics: user.role != .student,
                    teaches: user.role != .student, isAdmin: user.role == .admin)
            }
        }
        router.get("/classes") { request, context -> Response in
            guard case .user(let user) = context.principal else { return .redirect(to: "/", type: .found) }
            guard user.role != .student else { throw APIError.forbidden("Classes are for instructors.") }
            let list = try await classes.list(instructorID: user.role == .admin ? nil : user.id)
            return page(request, "classes") { csrf in
                ClassesPage(
                    email: user.email, role: user.role.rawValue, csrf: csrf,
                    classes: list.map { ClassesPage.Item(id: $0.id, name: $0.name, code: $0.code, description: $0.description) })
            }
        }
        router.get("/logs") { request, context -> Response in
            guard case .user(let user) = context.principal else { return .redirect(to: "/", type: .found) }
            guard user.role == .admin else { throw APIError.forbidden("The request log is for admins.") }
            return page(request, "logs") { csrf in LogsPage(email: user.email, role: user.role.rawValue, csrf: csrf) }
        }
        router.get("/classes/{id}") { request, context -> Response in
            guard case .user(let user) = context.principal else { return .redirect(to: "/", type: .found) }
            let record = try await ClassesController.authorizedClass(context, in: classes)
            return page(request, "class") { csrf in
                ClassPage(
                    email: user.email, role: user.role.rawValue, csrf: csrf, id: record.id, name: record.name, code: record.code,
                    description: record.description, idleMinutes: idleMinutes)
            }
        }
        router.get("/assignments/{id}") { request, context -> Response in
            guard case .user(let user) = context.principal else { return .redirect(to: "/", type: .found) }
            let assignment = try await AssignmentsController.managedAssignment(context, assignments: assignments, classes: classes)
            let record = try await classes.find(id: assignment.classID)
            return page(request, "assignment") { csrf in
                AssignmentPage(
                    email: user.email, role: user.role.rawValue, csrf: csrf, id: assignment.id, title: assignment.title,
                    notebookPath: assignment.notebookPath, description: assignment.description,
                    dueAt: assignment.dueAtMs.map { Timestamp.format(milliseconds: $0) } ?? "", classID: assignment.classID,
                    className: record?.name ?? "")
            }
        }
        return router
    }

    private struct LoginPage {
        var csrf: String
        var error: String?
    }

    private struct DashboardPage {
        var email: String
        var userID: Int64
        var role: String
        var csrf: String
        var canSeeMetrics: Bool
        var teaches: Bool
        var isAdmin: Bool
    }

    private struct LogsPage {
        var email: String
        var role: String
        var csrf: String
    }

    private struct ClassesPage {
        struct Item {
            var id: Int64
            var name: String
            var code: String
            var description: String
        }

        var email: String
        var role: String
        var csrf: String
        var classes: [Item]
    }

    private struct ClassPage {
        var email: String
        var role: String
        var csrf: String
        var id: Int64
        var name: String
        var code: String
        var description: String
        var idleMinutes: Int
    }

    private struct AssignmentPage {
        var email: String
        var role: String
        var csrf: String
        var id: Int64
        var title: String
        var notebookPath: String
        var description: String
        var dueAt: String
        var classID: Int64
        var className: String
    }

    private func renderLogin(_ request: Request, error: String?, status: HTTPResponse.Status) -> Response {
        page(request, "login", status: status) { csrf in LoginPage(csrf: csrf, error: error) }
    }

    /// A rendered page with the CSRF token its forms and scripts send back (the cookie that
    /// holds it is set on the first visit).
    private func page(_ request: Request, _ template: String, status: HTTPResponse.Status = .ok, _ model: (_ csrf: String) -> Any) -> Response {
        let (token, cookie) = CSRF.token(request)
        guard let text = templates.render(model(token), withTemplate: template) else {
            return html("The page \(template) is missing from this build.", status: .internalServerError)
        }
        var response = html(text, status: status)
        if let cookie { response.setCookie(csrfCookie(cookie)) }
        return response
    }

    private func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    private func sessionCookie(_ value: String, maxAge: Int) -> Cookie {
        Cookie(name: AuthMiddleware.sessionCookie, value: value, maxAge: maxAge, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    private func csrfCookie(_ value: String) -> Cookie {
        Cookie(name: CSRF.cookie, value: value, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    static func decodeForm<Form: Decodable>(_ type: Form.Type, _ request: Request) async throws -> Form {
        let body = try await request.readBody(upTo: 16 * 1024)
        do {
            return try URLEncodedFormDecoder().decode(Form.self, from: String(decoding: body, as: UTF8.self))
        } catch {
            throw APIError.badRequest("The form could not be read.", code: "malformed")
        }
    }
}
