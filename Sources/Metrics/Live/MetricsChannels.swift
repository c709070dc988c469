import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel
import PulseboardLive

/// The live side of metrics: `metrics:<name>` carries every committed point of that metric.
package enum MetricsChannels {
    static let prefix = "metrics:"

    /// Admins and instructors follow operational metrics; students do not.
    package static let rule = ChannelRule(prefix: "metrics", form: "metrics:<name>") { _, user in
        user.role == .student ? "Students cannot see operational metrics." : nil
    }
}

extension Hub {
    /// Publishes committed metric points, one message per metric name.
    func publish(_ points: [MetricPoint]) {
        guard !points.isEmpty else { return }
        var byName: [String: [MetricPoint]] = [:]
        for point in points {
            byName[point.series.name, default: []].append(point)
        }
        for (name, points) in byName {
            // Written out only for a channel that someone follows (most are not).
            publish(channel: MetricsChannels.prefix + name, data: LivePoints(points: points.map(LivePoint.init)))
        }
    }
}

/// `GET /ws/metrics?type=<name>`: the source documents' shortcut for one metrics channel, for
/// clients with a session cookie. Their short names of the host series are understood.
package struct MetricsSocketController {
    static let shortNames = ["cpu": "host.cpu", "mem": "host.memory", "memory": "host.memory"]
    let session: LiveSession

    package init(session: LiveSession) {
        self.session = session
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.webSocket("/ws/metrics") { request, context in
            let type = request.uri.queryParameters.get("type") ?? "host.cpu"
            let name = Self.shortNames[type] ?? type
            return session.takeover(
                principal: context.principal, credential: LiveController.credential(request), initialChannel: MetricsChannels.prefix + name,
                logger: context.logger)
        }
        return router
    }
}

package struct LivePoints: Encodable, Sendable {
    var points: [LivePoint]
}

package struct LivePoint: Encodable, Sendable {
    var name: String
    var tags: [String: String]
    var timestamp: String
    var value: Double

    init(_ point: MetricPoint) {
        name = point.series.name
        tags = point.series.tags
        timestamp = Timestamp.format(milliseconds: point.timestampMs)
        value = point.value
    }
}
