import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import PulseboardApp
@testable import PulseboardClassroom
@testable import PulseboardDatabase
@testable import PulseboardKernel

/// Events sent with a missing, mistyped or expired class token are kept (bounded), listed to
/// those who may assign them, and applied once assigned, as if they had arrived in time.
@Suite("Stray learning events", .throwawayPostgres, .timeLimit(.minutes(3)))
struct StrayEventsTests {
    struct Groups: Decodable {
        struct Group: Decodable {
            var tokenLabel: String
            var classId: Int64?
            var className: String?
            var events: Int
            var students: [String]
        }

        var groups: [Group]
    }

    @Test(arguments: TestEngine.all) func eventsWithoutAClassAreKeptListedAndAssigned(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, parts in
            let admin = try await client.login().accessToken
            let instructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let course = try await client.createClass("stray", token: instructor)
            let early = Date(timeIntervalSinceNow: -600)

            // A mistyped token: still a 401, but the answer says the events were kept.
            let mistyped = try await client.sendEvents(
                [
                    ExtensionEvent.json("cell_executed", email: "late@example.com", time: early, cell: 2),
                    ExtensionEvent.json("cell_executed", email: "late@example.com", time: early.addingTimeInterval(5), cell: 3),
                ], classToken: "pbc_mistyped-token-value")
            #expect(mistyped.status == .unauthorized)
            #expect(mistyped.error?.message.contains("2 events were kept for an instructor to assign") == true)
            // No token at all.
            #expect(try await client.sendEvents([ExtensionEvent.json("help", email: "none@example.com")], classToken: nil).status == .unauthorized)
            // A replaced token after its grace period: the group names its class.
            let oldToken = try #require(course.ingestToken)
            #expect(try await client.request(.post, "/api/v1/classes/\(course.id)/token?graceHours=0", token: instructor).status == .ok)
            #expect(try await client.sendEvents([ExtensionEvent.json("help", email: "old@example.com")], classToken: oldToken).status == .unauthorized)

            let all = try await client.request(.get, "/api/v1/stray-events", token: admin).decode(Groups.self).groups
            #expect(all.count == 3)
            let typo = try #require(all.first { $0.tokenLabel == "pbc_mistyped" })
            #expect(typo.events == 2 && typo.students == ["late@example.com"] && typo.classId == nil)
            #expect(all.contains { $0.tokenLabel == "" && $0.students == ["none@example.com"] })
            let old = try #require(all.first { $0.classId == course.id })
            #expect(old.tokenLabel == String(oldToken.prefix(12)) && old.className == "Class stray")
            // The instructor sees only the group of their class's old token; a student nothing.
            let mine = try await client.request(.get, "/api/v1/stray-events", token: instructor).decode(Groups.self).groups
            #expect(mine.map(\.classId) == [course.id])
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            #expect(try await client.request(.get, "/api/v1/stray-events", token: student).status == .forbidden)

            // The instructor may not assign a group without a class; an admin may, into their class.
            let typoBody = #"{"tokenLabel":"pbc_mistyped","classId":\#(course.id)}"#
            #expect(try await client.request(.post, "/api/v1/stray-events/assign", token: instructor, json: typoBody).status == .forbidden)
            let otherInstructor = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let oldBody = #"{"tokenLabel":"\#(old.tokenLabel)","fromClassId":\#(course.id),"classId":\#(course.id)}"#
            #expect(try await client.request(.post, "/api/v1/stray-events/assign", token: otherInstructor, json: oldBody).status == .forbidden)
            #expect(try await client.request(.post, "/api/v1/stray-events/assign", token: admin, json: #"{"tokenLabel":"x"}"#).status == .badRequest)
            let noClass = #"{"tokenLabel":"pbc_mistyped","classId":999999}"#
            #expect(try await client.request(.post, "/api/v1/stray-events/assign", token: admin, json: noClass).error?.field == "classId")

            let assigned = try await client.request(.post, "/api/v1/stray-events/assign", token: admin, json: typoBody)
            #expect(assigned.status == .ok && assigned.text == #"{"assigned":2,"stored":2}"#)
            #expect(try await client.request(.post, "/api/v1/stray-events/assign", token: admin, json: typoBody).status == .notFound)
            #expect(try await client.request(.post, "/api/v1/stray-events/assign", token: instructor, json: oldBody).status == .ok)
            // Applied as if in time: the card has both cells, and the last activity is the events' time.
            let late = try await client.student("late@example.com", in: course.id, token: instructor) { $0.cellsExecuted == 2 }
            #expect(late.cellIndex == 3)
            _ = try await client.student("old@example.com", in: course.id, token: instructor) { $0.helpRequest != nil }
            let left = try await client.request(.get, "/api/v1/stray-events", token: admin).decode(Groups.self).groups
            #expect(left.map(\.tokenLabel) == [""])
            _ = parts
        }
    }

    /// Past the bounds the oldest go (of the sending address first, then of all) and are counted.
    @Test func theBoundsDropTheOldestAndCountThem() async throws {
        try await TestApp.run(configure: { $0.strayEventBounds.perAddress = 3 }) { client, parts in
            for n in 0..<5 {
                _ = try await client.sendEvents([ExtensionEvent.json("help", email: "s\(n)@example.com")], classToken: "pbc_unknown-token")
            }
            let kept = try await parts.store.select(SQLStatement("SELECT email FROM stray_events ORDER BY id")).compactMap { $0.first?.string }
            #expect(kept == ["s2@example.com", "s3@example.com", "s4@example.com"])
            let admin = try await client.login().accessToken
            #expect(try await client.request(.get, "/metrics", token: admin).text.contains("pulseboard_stray_events_dropped_total 2"))
        }
        try await TestApp.run(configure: { $0.strayEventBounds.total = 2 }) { client, parts in
            for n in 0..<3 {
                _ = try await client.sendEvents([ExtensionEvent.json("help", email: "t\(n)@example.com")], classToken: nil)
            }
            let kept = try await parts.store.select(SQLStatement("SELECT email FROM stray_events ORDER BY id")).compactMap { $0.first?.string }
            #expect(kept == ["t1@example.com", "t2@example.com"])
        }
    }
}
