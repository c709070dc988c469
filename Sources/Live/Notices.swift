import Foundation

/// A message for people rather than charts: an admin's announcement on `broadcast`, or a
/// student's `assignment_graded` on `notifications:<user id>`.
package struct Notice: Codable, Sendable, Equatable {
    /// `system` or `assignment_graded`.
    var kind: String
    var message: String
    var from: String?
    var at: String
    var assignmentId: Int64?
    var submissionId: Int64?
    var title: String?
    var grade: Double?

    package init(
        kind: String, message: String, from: String? = nil, at: String, assignmentId: Int64? = nil, submissionId: Int64? = nil, title: String? = nil,
        grade: Double? = nil
    ) {
        self.kind = kind
        self.message = message
        self.from = from
        self.at = at
        self.assignmentId = assignmentId
        self.submissionId = submissionId
        self.title = title
        self.grade = grade
    }
}

/// Sends notices to this instance's subscribers and, with several instances on PostgreSQL, to
/// every other instance's. Notices travel whole, as the other instances have nothing to read them
/// from.
package struct Notifier: Sendable {
    package let hub: Hub
    let relay: InstanceRelay?

    private struct Relayed: Codable {
        var channel: String
        var notice: Notice
    }

    package init(hub: Hub, relay: InstanceRelay?) {
        self.hub = hub
        self.relay = relay
        relay?.register("notice") { body in
            guard let relayed = try? JSONDecoder().decode(Relayed.self, from: Data(body.utf8)) else { return }
            hub.publish(channel: relayed.channel, data: relayed.notice)
        }
    }

    package func send(_ notice: Notice, on channel: String) {
        hub.publish(channel: channel, data: notice)
        guard let relay, let body = try? JSONEncoder().encode(Relayed(channel: channel, notice: notice)) else { return }
        relay.send("notice", String(decoding: body, as: UTF8.self), consequence: "other instances miss a notice on \(channel)")
    }
}
