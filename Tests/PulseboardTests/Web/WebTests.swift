import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardHTTP

@Suite("Pages, cookies and CSRF", .throwawayPostgres)
struct WebTests {
    /// Logs in through the form as a browser would and returns the session cookie's value.
    static func browserLogin(_ client: any TestClientProtocol, password: String = TestApp.adminPassword) async throws -> String {
        let page = try await client.request(.get, "/")
        let csrf = try #require(cookie("pb_csrf", in: page))
        let response = try await client.executeRequest(
            uri: "/login",
            method: .post,
            headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "pb_csrf=\(csrf)"],
            body: ByteBuffer(string: "email=admin%40example.com&password=\(password)&csrf=\(csrf)")
        )
        try #require(response.status == .seeOther, "login form answered \(response.status)")
        return try #require(cookie("pb_session", in: response))
    }

    /// The CSRF token our pages carry for this session (in the logout form of every page).
    static func pageCSRF(_ client: any TestClientProtocol, session: String) async throws -> String {
        let page = try await client.request(.get, "/dashboard", headers: [.cookie: "pb_session=\(session)"]).text
        let marker = #"name="csrf" value=""#
        let start = try #require(page.range(of: marker)).upperBound
        return String(page[start...].prefix { $0 != "\"" })
    }

    static func cookie(_ name: String, in response: TestResponse) -> String? {
        response.headers[values: .setCookie].lazy.compactMap { header -> String? in
            let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            return pair.count == 2 && pair[0] == name ? String(pair[1]) : nil
        }.first
    }

    @Test(arguments: TestEngine.all) func theLoginPageSetsAStrictHttpOnlyCSRFCookie(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let page = try await client.request(.get, "/")
            #expect(page.status == .ok)
            #expect(page.text.contains(#"<form method="post" action="/login""#))
            let header = try #require(page.headers[values: .setCookie].first { $0.hasPrefix("pb_csrf=") })
            #expect(header.contains("HttpOnly"))
            #expect(header.contains("SameSite=Strict"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            #expect(page.headers[.xContentTypeOptions] == "nosniff")
        }
    }

    @Test(arguments: TestEngine.all) func formLoginOpensASessionAndLogoutEndsIt(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let session = try await Self.browserLogin(client)
            let dashboard = try await client.request(.get, "/dashboard", headers: [.cookie: "pb_session=\(session)"])
            #expect(dashboard.status == .ok)
            #expect(dashboard.text.contains("/static/dashboard.js"))
            // The cookie reads the API…
            #expect(try await client.request(.get, "/api/v1/series", headers: [.cookie: "pb_session=\(session)"]).status == .ok)
            // …but does not change anything through it (CSRF): unsafe API methods need a bearer token.
            let write = try await client.request(.post, "/api/v1/tokens", json: #"{"name":"x"}"#, headers: [.cookie: "pb_session=\(session)"])
            #expect(write.status == .unauthorized)

            let page = try await client.request(.get, "/", headers: [.cookie: "pb_session=\(session)"])
            #expect(page.status == .found)
            let csrf = try await Self.pageCSRF(client, session: session)
            let withoutToken = try await client.executeRequest(
                uri: "/logout", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "pb_session=\(session)"],
                body: ByteBuffer(string: "csrf=wrong"))
            #expect(withoutToken.status == .forbidden)
            // A planted CSRF cookie with a matching form field is not the session's token.
            let planted = try await client.executeRequest(
                uri: "/logout", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "pb_session=\(session); pb_csrf=planted"],
                body: ByteBuffer(string: "csrf=planted"))
            #expect(planted.status == .forbidden)
            let logout = try await client.executeRequest(
                uri: "/logout", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "pb_session=\(session); pb_csrf=\(csrf)"],
                body: ByteBuffer(string: "csrf=\(csrf)"))
            #expect(logout.status == .seeOther)
            let after = try await client.request(.get, "/dashboard", headers: [.cookie: "pb_session=\(session)"])
            #expect(after.status == .found)
        }
    }

    @Test(arguments: TestEngine.all) func aLoginFormWithoutItsCSRFTokenOrWithAWrongPasswordIsRefused(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let noToken = try await client.executeRequest(
                uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "email=admin%40example.com&password=\(TestApp.adminPassword)"))
            #expect(noToken.status == .forbidden)
            #expect(Self.cookie("pb_session", in: noToken) == nil)
            let wrong = try await client.executeRequest(
                uri: "/login", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "pb_csrf=abc"],
                body: ByteBuffer(string: "email=admin%40example.com&password=wrong&csrf=abc"))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.text.contains("Wrong email or password"))
        }
    }

    @Test(arguments: TestEngine.all) func behindTLSCookiesAreSecureAndHSTSIsSent(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, configure: { $0.behindTLS = true }) { client, _ in
            let page = try await client.request(.get, "/")
            #expect(page.headers[values: .setCookie].allSatisfy { $0.contains("Secure") })
            #expect(page.headers[.strictTransportSecurity] != nil)
        }
    }

    @Test(arguments: TestEngine.all) func staticFilesAreServedAndSmall(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let script = try await client.request(.get, "/static/dashboard.js")
            #expect(script.status == .ok)
            #expect(script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            let style = try await client.request(.get, "/static/app.css")
            let page = try await client.request(.get, "/")
            // The first page load (page, style, script) stays far under 200 KB.
            let live = try await client.request(.get, "/static/live.js")
            #expect(live.body.readableBytes + script.body.readableBytes + style.body.readableBytes + page.body.readableBytes < 200_000)
            #expect(try await client.request(.get, "/static/nothing.js").status == .notFound)
            // Served by Hummingbird's FileMiddleware: cache validators, HEAD and ranges.
            let etag = try #require(script.headers[.eTag])
            #expect(script.headers[.cacheControl] == "public, max-age=300")
            #expect(try await client.request(.get, "/static/dashboard.js", headers: [.ifNoneMatch: etag]).status == .notModified)
            let head = try await client.request(.head, "/static/dashboard.js")
            #expect(head.status == .ok && head.body.readableBytes == 0)
            let range = try await client.request(.get, "/static/dashboard.js", headers: [.range: "bytes=0-9"])
            #expect(range.status == .partialContent && range.body.readableBytes == 10)
        }
    }

    @Test(arguments: TestEngine.all) func classPagesAreForTheirInstructorAndTheirCSRFHeaderAllowsWrites(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let session = try await Self.browserLogin(client)
            let admin = try await client.login().accessToken
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            let stranger = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let csrf = try await Self.pageCSRF(client, session: session)
            let cookies = "pb_session=\(session); pb_csrf=planted"
            // The page's script creates a class with the session cookie and the CSRF header…
            let created = try await client.request(
                .post, "/api/v1/classes", json: #"{"name":"<b>Bold</b> class","code":"web1"}"#,
                headers: [.cookie: cookies, AuthMiddleware.csrfHeader: csrf])
            #expect(created.status == .created)
            let course = try created.decode(CreatedClass.self)
            // …which a cross-site request cannot: without the header, or with another value, it is refused.
            for headers: HTTPFields in [
                [.cookie: cookies], [.cookie: cookies, AuthMiddleware.csrfHeader: "guess"], [.cookie: cookies, AuthMiddleware.csrfHeader: "planted"],
            ] {
                #expect(try await client.request(.post, "/api/v1/classes", json: #"{"name":"x","code":"web2"}"#, headers: headers).status == .unauthorized)
            }
            let list = try await client.request(.get, "/classes", headers: [.cookie: cookies])
            #expect(list.status == .ok)
            #expect(list.text.contains("/classes/\(course.id)"))
            #expect(list.text.contains("&lt;b&gt;Bold&lt;/b&gt;") && !list.text.contains("<b>Bold</b>"), "names are escaped")
            let page = try await client.request(.get, "/classes/\(course.id)", headers: [.cookie: cookies])
            #expect(page.status == .ok)
            #expect(page.text.contains(#"data-class-id="\#(course.id)""#) && page.text.contains("/static/class.js"))
            #expect(try await client.request(.get, "/classes/999999", headers: [.cookie: cookies]).status == .notFound)
            #expect(try await client.request(.get, "/classes/\(course.id)").status == .found)
            #expect(try await client.request(.get, "/classes/\(course.id)", token: stranger).status == .forbidden)
            #expect(try await client.request(.get, "/classes", token: student).status == .forbidden)
        }
    }

    @Test(arguments: TestEngine.all) func anAssignmentPageIsForItsClassesInstructor(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let scene = try await SubmissionScene.make(client)
            let uri = "/assignments/\(scene.assignmentID)"
            let page = try await client.request(.get, uri, token: scene.owner)
            #expect(page.status == .ok)
            #expect(page.text.contains(#"data-assignment-id="\#(scene.assignmentID)""#) && page.text.contains("Loops"))
            #expect(page.text.contains("/static/assignment.js") && page.text.contains(#"data-class-id="\#(scene.classID)""#))
            #expect(try await client.request(.get, uri, token: scene.admin).status == .ok)
            #expect(try await client.request(.get, uri, token: scene.stranger).status == .forbidden)
            #expect(try await client.request(.get, uri, token: scene.alice).status == .forbidden)
            #expect(try await client.request(.get, "/assignments/999999", token: scene.owner).status == .notFound)
            #expect(try await client.request(.get, uri).status == .found)
            // A student's own page carries what its hand-in form needs.
            let mine = try await client.request(.get, "/dashboard", token: scene.alice)
            #expect(mine.text.contains(#"id="my-assignments""#) && mine.text.contains("/static/me.js") && mine.text.contains("/static/live.js"))
        }
    }
}
