import PulseboardKernel

/// The channels Live itself carries: notices for people rather than charts.
package enum NoticeChannels {
    static let broadcast = "broadcast"
    static let notificationsPrefix = "notifications:"

    /// Messages for one user.
    package static func notifications(_ userID: Int64) -> String { notificationsPrefix + String(userID) }

    static let notificationsRule = ChannelRule(prefix: "notifications", form: "notifications:<user id>") { name, user in
        name == String(user.id) ? nil : "Only your own notifications."
    }
}

/// Who may follow the channels of one prefix (`class` for `class:<id>`): the feature that
/// publishes them says so.
package struct ChannelRule: Sendable {
    /// The part before the first colon.
    let prefix: String
    /// How the channel is written, for the message that lists the channels.
    let form: String
    /// Given the part after the colon and a user who is not an admin: nil when allowed, else why
    /// not. Throws when it cannot tell (the database did not answer): that is not a refusal.
    let refusal: @Sendable (_ name: String, _ user: UserClaims) async throws -> String?

    package init(prefix: String, form: String, refusal: @escaping @Sendable (_ name: String, _ user: UserClaims) async throws -> String?) {
        self.prefix = prefix
        self.form = form
        self.refusal = refusal
    }
}

/// Who may subscribe to which channel: an authorization decision made on every subscribe and
/// again whenever someone's access changes. Admins see everything, everyone `broadcast`; every
/// other channel by the rule of its prefix.
package struct ChannelPolicy: Sendable {
    private let rules: [String: ChannelRule]
    private let unknown: String

    /// `features` in the order the channels are listed to a client that asks for an unknown one.
    package init(_ features: [ChannelRule]) {
        let all = features + [NoticeChannels.notificationsRule]
        rules = Dictionary(all.map { ($0.prefix, $0) }) { first, _ in first }
        unknown = "Unknown channel: use \(all.map(\.form).joined(separator: ", ")) or \(NoticeChannels.broadcast)."
    }

    /// Nil when allowed, otherwise why not; throws when the decision could not be made.
    func refusal(for channel: String, user: UserClaims) async throws -> String? {
        if channel == NoticeChannels.broadcast { return nil }
        guard let colon = channel.firstIndex(of: ":"), channel.index(after: colon) < channel.endIndex,
            let rule = rules[String(channel[..<colon])]
        else { return unknown }
        if user.role == .admin { return nil }
        return try await rule.refusal(String(channel[channel.index(after: colon)...]), user)
    }
}
