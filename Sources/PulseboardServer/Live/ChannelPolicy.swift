/// Who may subscribe to which channel: an authorization decision made on every subscribe.
enum ChannelPolicy {
    static let metricsPrefix = "metrics:"

    /// Nil when allowed, otherwise why not.
    static func refusal(for channel: String, user: UserClaims) -> String? {
        if channel == "broadcast" { return nil }
        if channel.hasPrefix(metricsPrefix) {
            guard channel.count > metricsPrefix.count else { return "A metrics channel names a metric: metrics:<name>." }
            return user.role == .student ? "Students cannot see operational metrics." : nil
        }
        return "Unknown channel."
    }
}
