/// The channel names of DESIGN.md.
enum LiveChannels {
    static let metricsPrefix = "metrics:"
    static let broadcast = "broadcast"
    static let notificationsPrefix = "notifications:"

    /// Every change to a class's picture, for its instructor's live view.
    static func classView(_ classID: Int64) -> String { "class:\(classID)" }
    /// One student's execution updates, from every class: for the student and admins.
    static func progress(_ email: String) -> String { "progress:\(email)" }
    /// One student's execution updates in one class: for that class's instructors.
    static func progress(_ email: String, inClass classID: Int64) -> String { "progress:\(classID):\(email)" }
    /// Messages for one user.
    static func notifications(_ userID: Int64) -> String { notificationsPrefix + String(userID) }
}

/// Who may subscribe to which channel: an authorization decision made on every subscribe.
/// Admins see everything; instructors operational metrics, their classes and their students'
/// progress in those classes (never what the same student does in another class); students
/// their own progress and notifications; everyone `broadcast`.
struct ChannelPolicy: Sendable {
    let classes: Classes

    /// Nil when allowed, otherwise why not.
    func refusal(for channel: String, user: UserClaims) async -> String? {
        if channel == LiveChannels.broadcast { return nil }
        guard let colon = channel.firstIndex(of: ":"), channel.index(after: colon) < channel.endIndex else {
            return "Unknown channel: use metrics:<name>, class:<id>, progress:<email>, notifications:<user id> or broadcast."
        }
        let kind = channel[..<colon]
        let name = String(channel[channel.index(after: colon)...])
        if user.role == .admin { return nil }
        switch kind {
        case "metrics":
            return user.role == .student ? "Students cannot see operational metrics." : nil
        case "class":
            guard user.role == .instructor, let id = Int64(name), let record = try? await classes.find(id: id),
                (try? await classes.isTaught(record, by: user)) == true
            else {
                return "Only the class's instructors may follow it."
            }
            return nil
        case "progress":
            let scoped = name.split(separator: ":", maxSplits: 1)
            if scoped.count == 2, let classID = Int64(scoped[0]) {
                if user.role == .student { return String(scoped[1]) == user.email.lowercased() ? nil : "Students follow only their own progress." }
                guard let record = try? await classes.find(id: classID), (try? await classes.isTaught(record, by: user)) == true else {
                    return "Only the class's instructors may follow its students."
                }
                return nil
            }
            if user.role == .student { return name == user.email.lowercased() ? nil : "Students follow only their own progress." }
            return "Follow progress:<class id>:<email>: a student's progress in a class you teach."
        case "notifications":
            return name == String(user.id) ? nil : "Only your own notifications."
        default:
            return "Unknown channel: use metrics:<name>, class:<id>, progress:<email>, notifications:<user id> or broadcast."
        }
    }
}
