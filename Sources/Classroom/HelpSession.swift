/// A student's help session: from the `help` that opens a request to the student's `help_stop`,
/// or to `quietPeriod` without a repeat (the extension repeats `help` every 10 s while the
/// button is on). An instructor's "Helped" closes the request, not the session, so the repeats
/// that follow do not open a new one.
enum HelpSession {
    static let quietPeriod: Duration = .seconds(60)

    /// SQL over a `help_requests` row: it is its student's running session. Bind the start of
    /// the quiet period (now, or the event's time, minus `quietPeriod`).
    static let running = """
        (closed_at IS NULL OR (closed_by = 'instructor' AND released_at IS NULL AND COALESCE(last_help_at, opened_at) >= ?))
        """
}
