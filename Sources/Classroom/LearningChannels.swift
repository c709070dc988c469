import Foundation
import Logging
import PulseboardCourses
import PulseboardKernel
import PulseboardLive

/// The live channels of the classroom, and who may follow them.
package enum LearningChannels {
    /// Every change to a class's picture, for its instructor's live view.
    static func classView(_ classID: Int64) -> String { "class:\(classID)" }
    /// One student's execution updates, from every class: for the student and admins.
    static func progress(_ email: String) -> String { "progress:\(email)" }
    /// One student's execution updates in one class: for that class's instructors.
    static func progress(_ email: String, inClass classID: Int64) -> String { "progress:\(classID):\(email)" }

    /// Instructors follow their classes and their students' progress in those classes (never
    /// what the same student does in another class); students their own progress.
    package static func rules(classes: Classes) -> [ChannelRule] {
        [
            ChannelRule(prefix: "class", form: "class:<id>") { name, user in
                guard user.role == .instructor, let id = Int64(name), let record = try await classes.find(id: id),
                    try await classes.isTaught(record, by: user)
                else {
                    return "Only the class's instructors may follow it."
                }
                return nil
            },
            ChannelRule(prefix: "progress", form: "progress:<email>") { name, user in
                let scoped = name.split(separator: ":", maxSplits: 1)
                if scoped.count == 2, let classID = Int64(scoped[0]) {
                    if user.role == .student { return String(scoped[1]) == user.email.lowercased() ? nil : "Students follow only their own progress." }
                    guard let record = try await classes.find(id: classID), try await classes.isTaught(record, by: user) else {
                        return "Only the class's instructors may follow its students."
                    }
                    return nil
                }
                if user.role == .student { return name == user.email.lowercased() ? nil : "Students follow only their own progress." }
                return "Follow progress:<class id>:<email>: a student's progress in a class you teach."
            },
        ]
    }
}

/// The one publisher of `class:<id>`, an instructor's live view of a class (a student's new card
/// after anything changed it: events applied, a submission, a help request resolved; and
/// submissions as they arrive), and of `progress:`, each applied event for the student and the
/// class's instructors. With several instances on one PostgreSQL it also tells the others, in
/// order and through the relay log, so nothing is lost while their LISTEN reconnects: the
/// progress events whole, and which students' cards changed (class ids and emails, never the
/// cards), which they read from the shared database and publish to their own subscribers.
package struct ClassChannel: Sendable {
    let hub: Hub
    let progress: ClassProgress
    let relay: InstanceRelay?
    let telemetry: Telemetry
    let logger: Logger

    private struct Card: Codable {
        var classId: Int64
        var email: String
    }

    private struct Progress: Codable {
        var classId: Int64
        var email: String
        var update: ProgressEvent
    }

    package init(hub: Hub, progress: ClassProgress, relay: InstanceRelay?, telemetry: Telemetry, logger: Logger) {
        self.hub = hub
        self.progress = progress
        self.relay = relay
        self.telemetry = telemetry
        self.logger = logger
        relay?.register("cards") { body in
            guard let cards = try? JSONDecoder().decode([Card].self, from: Data(body.utf8)) else { return }
            let touched = Dictionary(grouping: cards, by: \.classId).mapValues { Set($0.map(\.email)) }
            await Self.publishCards(touched, hub: hub, progress: progress, telemetry: telemetry, logger: logger)
        }
        relay?.register("progress") { body in
            guard let updates = try? JSONDecoder().decode([Progress].self, from: Data(body.utf8)) else { return }
            Self.publishProgress(updates, hub: hub)
        }
    }

    /// Events were applied: each goes to the student's own `progress:<email>` and, for the
    /// class's instructors, `progress:<id>:<email>`; each student touched gets a new card.
    func eventsApplied(_ events: [LearningEvent]) async {
        let updates = events.compactMap { event in event.email.map { Progress(classId: event.classID, email: $0, update: ProgressEvent(event)) } }
        guard !updates.isEmpty else { return }
        Self.publishProgress(updates, hub: hub)
        if let relay, let body = try? JSONEncoder().encode(updates) {
            relay.send("progress", String(decoding: body, as: UTF8.self), consequence: "their progress views miss events")
        }
        await studentsChanged(Dictionary(grouping: updates, by: \.classId).mapValues { Set($0.map(\.email)) })
    }

    private static func publishProgress(_ updates: [Progress], hub: Hub) {
        for progress in updates {
            hub.publish(channel: LearningChannels.progress(progress.email), data: progress.update)
            hub.publish(channel: LearningChannels.progress(progress.email, inClass: progress.classId), data: progress.update)
        }
    }

    /// Publishes the touched students' cards here and tells the other instances.
    func studentsChanged(_ touched: [Int64: Set<String>]) async {
        relayCards(touched)
        await Self.publishCards(touched, hub: hub, progress: progress, telemetry: telemetry, logger: logger)
    }

    /// A submission arrived: this instance's subscribers see it; the other instances refresh the
    /// student's card.
    package func submissionReceived(_ submission: SubmissionsController.SubmissionView, classID: Int64, email: String) {
        hub.publish(channel: LearningChannels.classView(classID), data: SubmissionReceived(submission))
        relayCards([classID: [email]])
    }

    /// Cards that cannot be read (the database did not answer) are logged and counted
    /// (`pulseboard_class_cards_unpublished_total`): the page shows them at the student's next
    /// event or a reload.
    private static func publishCards(_ touched: [Int64: Set<String>], hub: Hub, progress: ClassProgress, telemetry: Telemetry, logger: Logger) async {
        // One query per class, however many students it touched; the classes at once (each on
        // its own connection with PostgreSQL), since an instructor waits for each card.
        await withTaskGroup(of: Void.self) { group in
            for (classID, emails) in touched {
                // Cards are read only for the classes whose page someone has open (or had lately).
                guard hub.keepsMessages(on: LearningChannels.classView(classID)) else {
                    hub.passOver(channel: LearningChannels.classView(classID), count: emails.count)
                    continue
                }
                group.addTask {
                    do {
                        for student in try await progress.students(classID: classID, emails: emails.sorted()) {
                            hub.publish(channel: LearningChannels.classView(classID), data: ClassUpdate.student(student))
                        }
                    } catch {
                        telemetry.classCardsUnpublished.increment(by: Int64(emails.count))
                        logger.warning("Class cards not published", metadata: ["class": "\(classID)", "students": "\(emails.count)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Tells the other instances which students' cards changed.
    private func relayCards(_ touched: [Int64: Set<String>]) {
        let cards = touched.flatMap { classID, emails in emails.map { Card(classId: classID, email: $0) } }
        guard let relay, !cards.isEmpty, let body = try? JSONEncoder().encode(cards) else { return }
        relay.send("cards", String(decoding: body, as: UTF8.self), consequence: "their class pages miss a card change")
    }
}

/// On `class:<id>`: a student handed in a version (the assignment page refreshes its list).
struct SubmissionReceived: Encodable, Sendable {
    var kind = "submission"
    var submission: SubmissionsController.SubmissionView

    init(_ submission: SubmissionsController.SubmissionView) {
        self.submission = submission
    }
}
