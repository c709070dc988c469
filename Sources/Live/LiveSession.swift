import DequeModule
import Foundation
import Logging
import NIOCore
import NIOWebSocket
import PulseboardHTTP
import PulseboardKernel
import Synchronization

/// What every WebSocket connection shares: the hub, authentication, the channel rules, and the
/// limits of a connection. `takeover` makes the NIO handlers of one upgraded connection.
package struct LiveSession: Sendable {
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
        /// A ping goes out this long after the last one; a client that has not answered it by the
        /// next one is gone.
        var pingInterval: Duration = .seconds(30)

        package init(
            sendQueueCapacity: Int, authTimeout: Duration, maxChannels: Int = 100, maxMessageBytes: Int = 64 * 1024, maxPendingMessages: Int = 256,
            closeGrace: Duration = .seconds(2), pingInterval: Duration = .seconds(30)
        ) {
            self.sendQueueCapacity = sendQueueCapacity
            self.authTimeout = authTimeout
            self.maxChannels = maxChannels
            self.maxMessageBytes = maxMessageBytes
            self.maxPendingMessages = maxPendingMessages
            self.closeGrace = closeGrace
            self.pingInterval = pingInterval
        }
    }

    let hub: Hub
    let auth: any Authenticating
    let policy: ChannelPolicy
    let accessChanges: AccessChanges
    let telemetry: Telemetry
    let sockets: OpenSockets
    let settings: Settings

    package init(
        hub: Hub, auth: any Authenticating, policy: ChannelPolicy, accessChanges: AccessChanges, telemetry: Telemetry, sockets: OpenSockets,
        settings: Settings
    ) {
        self.hub = hub
        self.auth = auth
        self.policy = policy
        self.accessChanges = accessChanges
        self.telemetry = telemetry
        self.sockets = sockets
        self.settings = settings
    }

    /// The handlers of an upgraded connection: whole messages (fragments joined, at most
    /// `maxMessageBytes`) to a `LiveSocketHandler`, which feeds a `LiveConnection`. No task is
    /// kept per connection: one runs only while the connection has client messages to handle.
    package func takeover(principal: Principal?, credential: Credential?, initialChannel: String?, logger: Logger) -> WebSocketTakeover.Handlers {
        { channel in
            let socket = LiveSocketHandler(settings: settings)
            let connection = LiveConnection(
                session: self, outlet: WebSocketOutlet(channel: channel, handler: socket, closeGrace: settings.closeGrace), credential: credential,
                logger: logger)
            socket.connection = connection
            try channel.pipeline.syncOperations.addHandlers([
                NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1_024, maxAccumulatedFrameSize: settings.maxMessageBytes),
                socket,
            ])
            connection.open(principal: principal, initialChannel: initialChannel, on: channel.eventLoop)
        }
    }
}

/// One WebSocket connection's session: authenticates (session cookie at upgrade, or a first
/// `{"op":"auth","token":…}` message), handles subscribe / unsubscribe / ping, and hands its
/// subscriber's messages to the socket. When someone's access changes, it checks its credential
/// and every channel again: what is no longer allowed ends with a frame saying why.
///
/// What happens to it (client messages, access changes, the authentication deadline) is handled
/// one event at a time in arrival order, by a task that runs only while events are waiting.
final class LiveConnection: @unchecked Sendable {
    // @unchecked: `user`, `credential` and `channels` are used only by `handle`, which the inbox
    // runs for one event at a time (a drain starts only after the previous one has ended).

    enum Event {
        case opened(Principal?, initialChannel: String?)
        case text(String)
        /// A message that is not text.
        case other
        case accessChanged
        case authenticationTimedOut
        case closed
    }

    private struct ClientMessage: Decodable {
        var op: String
        var token: String?
        var channel: String?
        var since: UInt64?
        var epoch: String?
    }

    private struct Inbox {
        var events: Deque<Event> = []
        var draining = false
        var ended = false
    }

    let session: LiveSession
    let subscriber: LiveSubscriber
    let logger: Logger
    private let inbox = Mutex(Inbox())
    private var watch: UInt64?
    private var user: UserClaims?
    private var credential: Credential?
    private var channels = Set<String>()

    init(session: LiveSession, outlet: WebSocketOutlet, credential: Credential?, logger: Logger) {
        self.session = session
        self.credential = credential
        self.logger = logger
        subscriber = LiveSubscriber(queueCapacity: session.settings.sendQueueCapacity, outlet: outlet) { [telemetry = session.telemetry] in
            telemetry.webSocketClientDropped()
            logger.info("Closing a WebSocket client that does not keep up")
        }
    }

    /// Called once, on the event loop, when the handlers are in place.
    func open(principal: Principal?, initialChannel: String?, on eventLoop: any EventLoop) {
        session.telemetry.webSocketOpened()
        session.sockets.opened(self)
        watch = session.accessChanges.watch { [weak self] in self?.post(.accessChanged) }
        post(.opened(principal, initialChannel: initialChannel))
        if principal == nil {
            eventLoop.scheduleTask(in: .nanoseconds(Int64(session.settings.authTimeout.seconds * 1e9))) { [weak self] in
                self?.post(.authenticationTimedOut)
            }
        }
    }

    /// Queues an event; false when the client has sent more messages than may wait.
    @discardableResult
    func post(_ event: Event) -> Bool {
        let (accepted, start) = inbox.withLock { inbox -> (Bool, Bool) in
            guard !inbox.ended else { return (false, false) }
            if case .closed = event {
                inbox.ended = true
            } else if inbox.events.count >= session.settings.maxPendingMessages {
                return (false, false)
            }
            inbox.events.append(event)
            let start = !inbox.draining
            inbox.draining = true
            return (true, start)
        }
        if start { Task { await drain() } }
        return accepted
    }

    /// A client that sends faster than its messages are handled is closed, not buffered.
    func flooded() {
        subscriber.send(LiveMessage.error(code: "too_many_messages", message: "Wait for the answers before sending more."))
        subscriber.close(code: .policyViolation, reason: "too many messages")
    }

    private func drain() async {
        while let event = inbox.withLock({ inbox -> Event? in
            if let event = inbox.events.popFirst() { return event }
            inbox.draining = false
            return nil
        }) {
            await handle(event)
        }
    }

    private func handle(_ event: Event) async {
        switch event {
        case .opened(let principal, let initialChannel):
            guard let principal else { return }
            authenticate(principal)
            if let initialChannel { await subscribe(initialChannel, since: nil, epoch: nil) }
        case .text(let text):
            await handle(text)
        case .other:
            subscriber.send(LiveMessage.error(code: "malformed", message: "Send JSON text messages with an \"op\"."))
        case .accessChanged:
            await recheck()
        case .authenticationTimedOut:
            if user == nil {
                subscriber.send(LiveMessage.error(code: "unauthenticated", message: "No authentication received in time."))
                subscriber.close(code: .policyViolation, reason: "authentication timeout")
            }
        case .closed:
            if let watch { session.accessChanges.stopWatching(watch) }
            for channel in channels { session.hub.unsubscribe(subscriber, from: channel) }
            channels = []
            session.sockets.closed(self)
            session.telemetry.webSocketClosed()
        }
    }

    private func handle(_ text: String) async {
        guard let request = try? JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8)) else {
            return subscriber.send(LiveMessage.error(code: "malformed", message: "Send JSON text messages with an \"op\"."))
        }
        switch (request.op, request.channel) {
        case ("auth", _):
            if user != nil {
                subscriber.send(LiveMessage.error(code: "already_authenticated", message: "This connection is authenticated."))
            } else {
                var principal: Principal?
                if let token = request.token {
                    principal = try? await session.auth.principal(.bearer(token))
                    credential = .bearer(token)
                }
                authenticate(principal)
            }
        case ("subscribe", let channel?):
            await subscribe(channel, since: request.since, epoch: request.epoch)
        case ("unsubscribe", let channel?):
            if channels.remove(channel) != nil { session.hub.unsubscribe(subscriber, from: channel) }
            subscriber.send(LiveMessage.control(type: "unsubscribed", channel: channel))
        case ("ping", _):
            subscriber.send(LiveMessage.control(type: "pong"))
        default:
            subscriber.send(LiveMessage.error(code: "unknown_op", message: "Unknown op or missing channel."))
        }
    }

    private func authenticate(_ principal: Principal?) {
        guard case .user(let claims) = principal else {
            subscriber.send(LiveMessage.error(code: "unauthenticated", message: "Log in first: send {\"op\":\"auth\",\"token\":…}."))
            subscriber.close(code: .policyViolation, reason: "unauthenticated")
            return
        }
        user = claims
        subscriber.send(LiveMessage.control(type: "authenticated"))
    }

    private func subscribe(_ channel: String, since: UInt64?, epoch: String?) async {
        guard let user else {
            return subscriber.send(LiveMessage.error(code: "unauthenticated", message: "Authenticate before subscribing.", channel: channel))
        }
        let refusal: String?
        do {
            refusal = try await session.policy.refusal(for: channel, user: user)
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
        guard channels.contains(channel) || channels.count < session.settings.maxChannels else {
            return subscriber.send(
                LiveMessage.error(code: "too_many_channels", message: "At most \(session.settings.maxChannels) channels per connection.", channel: channel))
        }
        if channels.contains(channel) { session.hub.unsubscribe(subscriber, from: channel) }
        channels.insert(channel)
        session.hub.subscribe(subscriber, to: channel, since: since, epoch: epoch)
    }

    /// Someone's access changed: maybe ours. A database that does not answer changes nothing.
    private func recheck() async {
        guard user != nil, let credential else { return }
        let principal: Principal?
        do {
            principal = try await session.auth.principal(credential)
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
            guard let refusal = try? await session.policy.refusal(for: channel, user: current) else { continue }
            channels.remove(channel)
            session.hub.unsubscribe(subscriber, from: channel)
            subscriber.send(LiveMessage.error(code: "revoked", message: refusal, channel: channel))
        }
    }

    /// The server is stopping: the client is told to come back later.
    func goingAway() {
        subscriber.close(code: .goingAway, reason: "the server is restarting")
    }
}
