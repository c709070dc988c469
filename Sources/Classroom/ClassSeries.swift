import Foundation
import PulseboardCourses
import PulseboardDatabase
import PulseboardKernel
import PulseboardMetrics
import PulseboardPromQL

/// Class-level series for the Prometheus API, so that an instructor can chart a class in Grafana:
/// one sample a minute (at each whole minute, for the minute that ends there) from the class's
/// creation, labelled with the class's `class` id and `class_code`:
///
/// - `pulseboard_class_events_per_minute`: learning events received;
/// - `pulseboard_class_errors_per_minute`: cell executions that failed;
/// - `pulseboard_class_active_students`: students who sent an event in the minute;
/// - `pulseboard_class_open_help_requests`: help requests open at the minute.
///
/// Computed from the class's events when asked, for the classes the caller teaches (all of
/// them for an admin; none for a student).
package struct ClassSeriesSource: PrometheusSource {
    enum Metric: String, CaseIterable {
        case events = "pulseboard_class_events_per_minute"
        case errors = "pulseboard_class_errors_per_minute"
        case activeStudents = "pulseboard_class_active_students"
        case openHelpRequests = "pulseboard_class_open_help_requests"
    }

    static let minuteMs: Int64 = 60_000
    let classes: Classes
    let store: any Database

    package init(classes: Classes, store: any Database) {
        self.classes = classes
        self.store = store
    }

    package func forEachSeries(
        matching matchers: [LabelMatcher], request: SampleRequest, sampleLimit: Int, caller: UserClaims, _ body: (StoredSeries) throws -> Void
    ) async throws {
        for (record, metric, labels) in try await candidates(matchers, caller: caller) {
            let span = request.span
            let all = Self.minutes(from: max(span.lowerBound, record.createdAt.millisecondsSince1970), to: span.upperBound)
            let minutes = request.needed(all).flatMap { all[$0] }
            guard minutes.count <= sampleLimit else { throw PromQLError.execution(QueryEngine.tooManySamples) }
            guard !minutes.isEmpty else { continue }
            try body(StoredSeries(labels: labels, timestamps: minutes, values: try await values(metric, classID: record.id, minutes: minutes)))
        }
    }

    package func labelSets(matching matchers: [LabelMatcher], fromMs: Int64, toMs: Int64, caller: UserClaims) async throws -> [Labels] {
        try await candidates(matchers, caller: caller).filter { $0.record.createdAt.millisecondsSince1970 <= toMs }.map(\.labels)
    }

    /// The series of the classes the caller teaches that match.
    private func candidates(_ matchers: [LabelMatcher], caller: UserClaims) async throws -> [(record: ClassRecord, metric: Metric, labels: Labels)] {
        // Nothing to read for a query about other series.
        guard Metric.allCases.contains(where: { metric in matchers.allSatisfy { $0.name != Labels.metricName || $0.matches(metric.rawValue) } }),
            caller.role != .student
        else { return [] }
        let visible = try await classes.list(instructorID: caller.role == .admin ? nil : caller.id)
        return visible.flatMap { record in
            Metric.allCases.compactMap { metric in
                let labels = Labels(["__name__": metric.rawValue, "class": String(record.id), "class_code": record.code])
                return matchers.allSatisfy { $0.matches(labels) } ? (record, metric, labels) : nil
            }
        }
    }

    /// The whole minutes in [from, to].
    static func minutes(from: Int64, to: Int64) -> [Int64] {
        let first = (from + minuteMs - 1) / minuteMs * minuteMs
        guard first <= to else { return [] }
        return (0...(to - first) / minuteMs).map { first + $0 * minuteMs }
    }

    /// The metric's value at each minute, for the minute that ends there.
    private func values(_ metric: Metric, classID: Int64, minutes: [Int64]) async throws -> [Double] {
        let (from, to) = (minutes.first! - Self.minuteMs, minutes.last!)
        let range: [SQLValue] = [.integer(classID), .integer(from), .integer(to)]
        let counted: String
        switch metric {
        case .events:
            counted =
                "SELECT (received_at / 60000) * 60000 + 60000 AS minute, COUNT(*) FROM events WHERE class_id = ? AND received_at >= ? AND received_at < ? GROUP BY minute"
        case .errors:
            counted = """
                SELECT (executed_at / 60000) * 60000 + 60000 AS minute, COUNT(*) FROM cell_executions
                WHERE class_id = ? AND executed_at >= ? AND executed_at < ? AND has_error = 1 GROUP BY minute
                """
        case .activeStudents:
            counted = """
                SELECT (received_at / 60000) * 60000 + 60000 AS minute, COUNT(DISTINCT email) FROM events
                WHERE class_id = ? AND received_at >= ? AND received_at < ? AND email IS NOT NULL GROUP BY minute
                """
        case .openHelpRequests:
            let requests = try await store.select(
                SQLStatement(
                    "SELECT opened_at, closed_at FROM help_requests WHERE class_id = ? AND opened_at <= ? AND (closed_at IS NULL OR closed_at > ?)",
                    .integer(classID), .integer(to), .integer(from)))
            let spans = requests.compactMap { row in row.first?.int.map { (opened: $0, closed: row.last?.int) } }
            return minutes.map { minute in Double(spans.count { $0.opened <= minute && ($0.closed.map { $0 > minute } ?? true) }) }
        }
        var byMinute: [Int64: Double] = [:]
        for row in try await store.select(SQLStatement(counted, arguments: range)) {
            guard row.count == 2, let minute = row[0].int, let count = row[1].int else { throw UnexpectedRow(table: "class series", row: row) }
            byMinute[minute] = Double(count)
        }
        return minutes.map { byMinute[$0] ?? 0 }
    }
}
