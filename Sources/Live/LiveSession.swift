import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import PulseboardHTTP
import PulseboardKernel
import Synchronization

/// One WebSocket connection: authenticates (session cookie at upgrade, or a first
/// `{"op":"auth","token":…}` message), handles subscribe / unsubscribe / ping, and pumps the
/// subscriber's bounded queue to the socket. The inbound side is always drained, which keeps
/// Hummingbird's automatic pings working. When someone's access changes, the session checks its
/// credential and every channel again: what is no longer allowed ends with a frame saying why.
package struct LiveSession {
    package struct Settings: Sendable {
        var sendQueueCapacity: Int
        var authTimeout: Duration
        var maxChannels = 100
        var maxMessageBytes = 64 * 1024
        /// Client messages waiting to be handled before the client counts as flooding.
        var maxPendingMessages = 256
        /// How long a client that is being closed gets to take the close frame before the
        /// connection is cut (a client that stopped reading never takes it).
        var closeGrace: Duration = .seconds(2)

        package init(
            sendQueueCapacity: Int, authTimeout: Duration, maxChannels: Int = 100, maxMessageBytes: Int = 64 * 1024, maxPendingMessages: Int = 256,
            closeGrace: Duration = .seconds(2)
        ) {
            self.sendQueueCapacity = sendQueueCapacity
            self.authTimeout = authTimeout
            self.maxChannels = maxChannels
            self.maxMessageBytes = maxMessageBytes
            self.maxPendingMessages = maxPendingMessages
            self.closeGrace = closeGrace
        }
    }

    private struct ClientMessage: Decodable {
        var op: String
        var token: String?
        var channel: String?
        var since: UInt64?
        var epoch: String?
    }

    /// What the session reacts to, one at a time.
    private enum Event {
        case message(WebSocketMessage)
        case accessChanged
        case authenticationTimedOut
    }

    let hub: Hub
    let auth: any Authenticating
    let policy: ChannelPolicy
    let accessChanges: AccessChanges
    let telemetry: Telemetry
    let settings: Settings

    package init(hub: Hub, auth: any Authenticating, policy: ChannelPolicy, accessChanges: AccessChanges, telemetry: Telemetry, settings: Settings) {
        self.hub = hub
        self.auth = auth
        self.policy = policy
        self.accessChanges = accessChanges
        self.telemetry = telemetry
        self.settings = settings
    }

    package func run(
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        principal initialPrincipal: Principal?,
        credential initialCredential: Credential?,
        initialChannel: String?,
        connection: any Channel,
        logger: Logger
    ) async {
        // Every session holds only two tasks (the writer and the reader, which feeds the loop
        // below): timers go to the connection's event loop, and the access doorbell yields into
        // the loop's stream. An idle socket then costs little memory.
        let closeGrace = TimeAmount.nanoseconds(Int64(settings.closeGrace.seconds * 1e9))
        let subscriber = LiveSubscriber(
            queueCapacity: settings.sendQueueCapacity,
            // A client being closed gets a moment to take the close frame; one that stopped reading never takes it.
            onClose: { connection.eventLoop.scheduleTask(in: closeGrace) { connection.close(promise: nil) } },
            onOverflow: { [telemetry] in
                telemetry.webSocketClientDropped()
                logger.info("Closing a WebSocket client that does not keep up")
            })
        // Client messages, access changes and the authentication deadline, handled one at a time
        // in arrival order. A client that sends faster than its messages are handled is closed,
        // not buffered.
        let (events, eventSink) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingOldest(settings.maxPendingMessages))
        var user: UserClaims?
        var credential = initialCredential
        var channels = Set<String>()
        let watch = accessChanges.watch { eventSink.yield(.accessChanged) }
        telemetry.webSocketOpened()
        defer {
            accessChanges.stopWatching(watch)
            for channel in channels { hub.unsubscribe(subscriber, from: channel) }
            telemetry.webSocketClosed()
        }

        func authenticate(_ principal: Principal?) {
            guard case .user(let claims) = principal else {
                subscriber.send(LiveMessage.error(code: "unauthenticated", message: "Log in first: send {\"op\":\"auth\",\"token\":…}."))
                subscriber.close(code: .policyViolation, reason: "unauthenticated")
                return
            }
            user = claims
            subscriber.send(LiveMessage.control(type: "authenticated"))
        }

        func subscribe(_ channel: String, since: UInt64?, epoch: String?) async {
            guard let user else {
                return subscriber.send(LiveMessage.error(code: "unauthenticated", message: "Authenticate before subscribing.", channel: channel))
            }
            let refusal: String?
            do {
                refusal = try await policy.refusal(for: channel, user: user)
            } catch {
                // Not a refusal: the client tries again (the page scripts do, with backoff).
                logger.warning("Could not check a subscription", metadata: ["channel": "\(channel)", "error": "\(error)"])
                return subscriber.send(
                    LiveMessage.error(
                        code: "unavailable", message: "Your access could not be checked now (the database did not answer); try again.", channel: channel))
            }
            if let refusal {
                return subscriber.send(LiveMessage.error(code: "forbidden", message: refusal, channel: channel))
            }
            guard channels.contains(channel) || channels.count < settings.maxChannels else {
                return subscriber.send(
                    LiveMessage.error(code: "too_many_channels", message: "At most \(settings.maxChannels) channels per connection.", channel: channel))
            }
            if channels.contains(channel) { hub.unsubscribe(subscriber, from: channel) }
            channels.insert(channel)
            hub.subscribe(subscriber, to: channel, since: since, epoch: epoch)
        }

        /// Someone's access changed: maybe ours. A database that does not answer changes nothing.
        func recheck() async {
            guard user != nil, let credential else { return }
            let principal: Principal?
            do {
                principal = try await auth.principal(credential)
            } catch {
                return logger.warning("Could not re-check a live session's access", metadata: ["error": "\(error)"])
            }
            guard case .user(let current) = principal else {
                subscriber.send(LiveMessage.error(code: "revoked", message: "Your access ended: you were logged out, removed or changed by an admin."))
                return subscriber.close(code: .policyViolation, reason: "access revoked")
            }
            user = current
            for channel in channels.sorted() {
                // A channel stays while its access cannot be checked; the next change checks it again.
                guard let refusal = try? await policy.refusal(for: channel, user: current) else { continue }
                channels.remove(channel)
                hub.unsubscribe(subscriber, from: channel)
                subscriber.send(LiveMessage.error(code: "revoked", message: refusal, channel: channel))
            }
        }

        if let initialPrincipal {
            authenticate(initialPrincipal)
            if let initialChannel { await subscribe(initialChannel, since: nil, epoch: nil) }
        }

        if initialPrincipal == nil {
            let timeout = TimeAmount.nanoseconds(Int64(settings.authTimeout.seconds * 1e9))
            connection.eventLoop.scheduleTask(in: timeout) { eventSink.yield(.authenticationTimedOut) }
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for await text in subscriber.messages {
                        try await outbound.write(.text(text))
                    }
                    if let close = subscriber.pendingClose {
                        try await outbound.close(close.code, reason: close.reason)
                    }
                } catch {
                    logger.debug("WebSocket write failed", metadata: ["error": "\(error)"])
                }
            }
            group.addTask { [maxMessageBytes = settings.maxMessageBytes] in
                do {
                    for try await message in inbound.messages(maxSize: maxMessageBytes) {
                        guard case .dropped = eventSink.yield(.message(message)) else { continue }
                        subscriber.send(LiveMessage.error(code: "too_many_messages", message: "Wait for the answers before sending more."))
                        subscriber.close(code: .policyViolation, reason: "too many messages")
                        break
                    }
                } catch {
                    logger.debug("WebSocket read ended", metadata: ["error": "\(error)"])
                }
                eventSink.finish()
            }
            for await event in events {
                let message: WebSocketMessage
                switch event {
                case .message(let received): message = received
                case .accessChanged:
                    await recheck()
                    continue
                case .authenticationTimedOut:
                    if user == nil {
                        subscriber.send(LiveMessage.error(code: "unauthenticated", message: "No authentication received in time."))
                        subscriber.close(code: .policyViolation, reason: "authentication timeout")
                    }
                    continue
                }
                guard case .text(let text) = message,
                    let request = try? JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8))
                else {
                    subscriber.send(LiveMessage.error(code: "malformed", message: "Send JSON text messages with an \"op\"."))
                    continue
                }
                switch (request.op, request.channel) {
                case ("auth", _):
                    if user != nil {
                        subscriber.send(LiveMessage.error(code: "already_authenticated", message: "This connection is authenticated."))
                    } else {
                        var principal: Principal?
                        if let token = request.token {
                            principal = try? await auth.principal(.bearer(token))
                            credential = .bearer(token)
                        }
                        authenticate(principal)
                    }
                case ("subscribe", let channel?):
                    await subscribe(channel, since: request.since, epoch: request.epoch)
                case ("unsubscribe", let channel?):
                    if channels.remove(channel) != nil { hub.unsubscribe(subscriber, from: channel) }
                    subscriber.send(LiveMessage.control(type: "unsubscribed", channel: channel))
                case ("ping", _):
                    subscriber.send(LiveMessage.control(type: "pong"))
                default:
                    subscriber.send(LiveMessage.error(code: "unknown_op", message: "Unknown op or missing channel."))
                }
            }
            subscriber.finish()
            group.cancelAll()
        }
    }
}
