import Foundation
import Hummingbird
import PulseboardHTTP
import PulseboardKernel

/// `POST /api/v1/broadcast`: an admin's system message to every connected user, on `broadcast`.
package struct BroadcastController {
    struct SystemMessage: Codable, Sendable {
        var message: String
    }

    struct Sent: Encodable {
        var channel: String
        var seq: UInt64
    }

    let notifier: Notifier

    package init(notifier: Notifier) {
        self.notifier = notifier
    }

    package var routes: RouteCollection<AppRequestContext> {
        let router = RouteCollection(context: AppRequestContext.self)
        router.post("/broadcast") { request, context -> Response in
            let admin = try context.requireUser([.admin])
            let body = try await request.decode(as: SystemMessage.self, context: context)
            let message = body.message.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...2_000).contains(message.count) else {
                throw APIError.unprocessable("A system message has 1 to 2,000 characters.", details: ["field": .string("message")])
            }
            notifier.send(Notice(kind: "system", message: message, from: admin.email, at: Timestamp.format(Date())), on: NoticeChannels.broadcast)
            return try JSONResponse(Sent(channel: NoticeChannels.broadcast, seq: notifier.hub.sequence(of: NoticeChannels.broadcast)), status: .accepted)
                .response
        }
        return router
    }
}
