import Foundation

/// A message for people rather than charts: an admin's announcement on `broadcast`, or a
/// student's `assignment_graded` on `notifications:<user id>`.
struct Notice: Codable, Sendable, Equatable {
    /// `system` or `assignment_graded`.
    var kind: String
    var message: String
    var from: String?
    var at: String
    var assignmentId: Int64?
    var submissionId: Int64?
    var title: String?
    var grade: Double?
}

/// Sends notices to this instance's subscribers and, with several instances on PostgreSQL, to
/// every other instance's (through `PostgresFanout`).
struct Notifier: Sendable {
    let hub: Hub
    let relay: @Sendable (String, Notice) -> Void

    func send(_ notice: Notice, on channel: String) {
        hub.publish(channel: channel, data: notice)
        relay(channel, notice)
    }
}
