import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import NIOWebSocket
import Synchronization
import Testing

@testable import PulseboardKernel
@testable import PulseboardLive

/// A JSON message from the server, loosely typed.
struct Message: @unchecked Sendable {
    // @unchecked: the dictionary holds only JSON values (strings, numbers, arrays, dictionaries).
    let fields: [String: Any]

    var type: String? { fields["type"] as? String }
    var channel: String? { fields["channel"] as? String }
    var seq: Int? { fields["seq"] as? Int }
    var epoch: String? { fields["epoch"] as? String }
    var code: String? { fields["code"] as? String }
    var values: [Double] {
        ((fields["data"] as? [String: Any])?["points"] as? [[String: Any]])?.compactMap { $0["value"] as? Double } ?? []
    }
}

/// Reads the server's messages one at a time.
struct LiveReader {
    var iterator: WebSocketInboundMessageStream.AsyncIterator

    init(_ inbound: WebSocketInboundStream) {
        iterator = inbound.messages(maxSize: 1 << 22).makeAsyncIterator()
    }

    mutating func next() async throws -> Message {
        guard case .text(let text) = try #require(try await iterator.next()) else {
            throw CancellationError()
        }
        return Message(fields: try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]))
    }

    /// Sends `{"op":"auth"}` and returns the answer.
    mutating func authenticate(_ token: String, on outbound: WebSocketOutboundWriter) async throws -> Message {
        try await outbound.send(#"{"op":"auth","token":"\#(token)"}"#)
        return try await next()
    }

    /// Sends `{"op":"subscribe"}` (without `since`) and returns the answer.
    mutating func subscribe(_ channel: String, on outbound: WebSocketOutboundWriter) async throws -> Message {
        try await outbound.send(#"{"op":"subscribe","channel":"\#(channel)"}"#)
        return try await next()
    }

    /// Reads until the server closes the connection.
    mutating func drain() async throws {
        while try await iterator.next() != nil {}
    }
}

extension WebSocketOutboundWriter {
    func send(_ json: String) async throws {
        try await write(.text(json))
    }
}

let bigFrames = WebSocketClientConfiguration(maxFrameSize: 1 << 22)

@Suite("Live WebSocket", .throwawayPostgres, .timeLimit(.minutes(2)))
struct LiveTests {
    @Test(arguments: TestEngine.all) func subscribersReceiveCommittedPointsInSequence(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let token = try await client.login().accessToken
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                #expect(try await reader.authenticate(token, on: outbound).type == "authenticated")
                try await outbound.send(#"{"op":"subscribe","channel":"metrics:cpu"}"#)
                let subscribed = try await reader.next()
                #expect(subscribed.type == "subscribed")
                #expect(subscribed.seq == 0)
                for value in [1, 2] {
                    #expect(try await client.ingest(#"[{"name":"cpu","value":\#(value)},{"name":"other","value":9}]"#, token: token).status == .ok)
                }
                let first = try await reader.next()
                let second = try await reader.next()
                #expect(first.type == "data")
                #expect(first.channel == "metrics:cpu")
                #expect([first.seq, second.seq] == [1, 2])
                #expect(first.values + second.values == [1, 2])
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test(arguments: TestEngine.all) func resumingWithSinceReplaysWhatWasMissed(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, parts in
            let token = try await client.login().accessToken
            for value in 1...5 {
                parts.hub.publish(channel: "broadcast", data: ["value": value])
            }
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(token, on: outbound)
                try await outbound.send(#"{"op":"subscribe","channel":"broadcast","since":2,"epoch":"\#(parts.hub.epoch)"}"#)
                #expect(try await reader.next().seq == 5)  // subscribed, at the current sequence
                var replayed: [Int?] = []
                for _ in 0..<3 { replayed.append(try await reader.next().seq) }
                #expect(replayed == [3, 4, 5])
                parts.hub.publish(channel: "broadcast", data: ["value": 6])
                #expect(try await reader.next().seq == 6)
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test(arguments: TestEngine.all) func aGapTheRingCannotFillOrAnotherEpochGetsAReset(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live, configure: { $0.liveHistory = 4 }) { client, parts in
            let token = try await client.login().accessToken
            for value in 1...10 {
                parts.hub.publish(channel: "broadcast", data: ["value": value])
            }
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(token, on: outbound)
                for request in [
                    #"{"op":"subscribe","channel":"broadcast","since":2}"#,
                    #"{"op":"subscribe","channel":"broadcast","since":9,"epoch":"another-server"}"#,
                    #"{"op":"subscribe","channel":"broadcast","since":50}"#,
                ] {
                    try await outbound.send(request)
                    #expect(try await reader.next().type == "subscribed")
                    let reset = try await reader.next()
                    #expect(reset.type == "reset", "\(request)")
                    #expect(reset.seq == 10)
                }
                // Within the ring: replay, no reset.
                try await outbound.send(#"{"op":"subscribe","channel":"broadcast","since":8}"#)
                #expect(try await reader.next().type == "subscribed")
                #expect(try await reader.next().seq == 9)
                #expect(try await reader.next().seq == 10)
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test func theRingOfRecentMessagesIsBoundedInBytes() {
        let hub = Hub(ringCapacity: 100, ringBytes: 10_000)
        let payload = String(repeating: "x", count: 3000)
        for _ in 1...10 { hub.publish(channel: "broadcast", data: ["pad": payload]) }
        let (subscriber, outlet) = RecordingOutlet.subscriber()
        // Only the last few 3 KB messages fit in 10 KB: resuming from 5 needs a reset.
        hub.subscribe(subscriber, to: "broadcast", since: 5, epoch: hub.epoch)
        hub.subscribe(subscriber, to: "broadcast", since: 8, epoch: hub.epoch)
        var types: [String] = []
        for text in outlet.texts {
            types.append(text.contains(#""type":"reset""#) ? "reset" : text.contains(#""type":"subscribed""#) ? "subscribed" : "data")
        }
        #expect(types == ["subscribed", "reset", "subscribed", "data", "data"])
    }

    @Test func aChannelNobodyFollowsIsCountedButNotKept() async {
        func types(_ outlet: RecordingOutlet) -> [String] {
            var types: [String] = []
            for text in outlet.texts {
                types.append(text.contains(#""type":"reset""#) ? "reset" : text.contains(#""type":"subscribed""#) ? "subscribed" : "data")
            }
            return types
        }
        let hub = Hub(ringCapacity: 100, resumeWindow: .seconds(600))
        // Never followed: the sequence advances, nothing is kept, so resuming needs a reset.
        for value in 1...3 { hub.publish(channel: "metrics:unseen", data: ["value": value]) }
        #expect(hub.sequence(of: "metrics:unseen") == 3)
        let (late, lateOutlet) = RecordingOutlet.subscriber()
        hub.subscribe(late, to: "metrics:unseen", since: 1, epoch: hub.epoch)
        #expect(types(lateOutlet) == ["subscribed", "reset"])

        // Followed, then left: within the window what was missed is replayed.
        let (reader, readerOutlet) = RecordingOutlet.subscriber()
        hub.subscribe(reader, to: "metrics:seen", since: nil, epoch: nil)
        hub.unsubscribe(reader, from: "metrics:seen")
        for value in 1...2 { hub.publish(channel: "metrics:seen", data: ["value": value]) }
        let (back, backOutlet) = RecordingOutlet.subscriber()
        hub.subscribe(back, to: "metrics:seen", since: 0, epoch: hub.epoch)
        #expect(types(backOutlet) == ["subscribed", "data", "data"])

        // Past the window it is not kept any more; notices always are.
        let forgetful = Hub(ringCapacity: 100, resumeWindow: .zero)
        let (left, leftOutlet) = RecordingOutlet.subscriber()
        forgetful.subscribe(left, to: "metrics:gone", since: nil, epoch: nil)
        forgetful.unsubscribe(left, from: "metrics:gone")
        try? await Task.sleep(for: .milliseconds(5))
        forgetful.publish(channel: "metrics:gone", data: ["value": 1])
        forgetful.publish(channel: "notifications:7", data: ["value": 1])
        let (again, againOutlet) = RecordingOutlet.subscriber()
        forgetful.subscribe(again, to: "metrics:gone", since: 0, epoch: forgetful.epoch)
        forgetful.subscribe(again, to: "notifications:7", since: 0, epoch: forgetful.epoch)
        #expect(types(againOutlet) == ["subscribed", "reset", "subscribed", "data"])

        // What decides whether messages are worth making (a class card is read from the
        // database only then); those not made still move the sequence on.
        #expect(hub.keepsMessages(on: "metrics:seen") && forgetful.keepsMessages(on: "notifications:7"))
        #expect(!forgetful.keepsMessages(on: "metrics:never") && !hub.keepsMessages(on: "class:9"))
        hub.passOver(channel: "class:9", count: 2)
        #expect(hub.sequence(of: "class:9") == 2)
        let (resuming, resumingOutlet) = RecordingOutlet.subscriber()
        hub.subscribe(resuming, to: "class:9", since: 1, epoch: hub.epoch)
        #expect(types(resumingOutlet) == ["subscribed", "reset"])
    }

    @Test(arguments: TestEngine.all) func subscribingNeedsAuthenticationAndTheRightRole(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let admin = try await client.login().accessToken
            let student = try await client.tokenForNewUser(role: .student, adminToken: admin)
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                #expect(try await reader.subscribe("metrics:cpu", on: outbound).code == "unauthenticated")
                try await outbound.send(#"{"op":"auth","token":"\#(student)"}"#)
                #expect(try await reader.next().type == "authenticated")
                #expect(try await reader.subscribe("metrics:cpu", on: outbound).code == "forbidden")
                #expect(try await reader.subscribe("nonsense", on: outbound).code == "forbidden")
                try await outbound.send("not json")
                #expect(try await reader.next().code == "malformed")
                try await outbound.close(.normalClosure, reason: nil)
            }
            let closed = try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                try await outbound.send(#"{"op":"auth","token":"not-a-token"}"#)
                #expect(try await reader.next().code == "unauthenticated")
                try await reader.drain()
            }
            #expect(closed?.closeCode == .policyViolation)
        }
    }

    @Test(arguments: TestEngine.all) func theSessionCookieAuthenticatesTheUpgrade(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let session = try await WebTests.browserLogin(client)
            var configuration = bigFrames
            configuration.additionalHeaders[.cookie] = "pb_session=\(session)"
            try await client.ws("/ws", configuration: configuration) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                #expect(try await reader.next().type == "authenticated")
                #expect(try await reader.subscribe("metrics:cpu", on: outbound).type == "subscribed")
                try await outbound.close(.normalClosure, reason: nil)
            }
            try await client.ws("/ws/metrics?type=cpu", configuration: configuration) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                #expect(try await reader.next().type == "authenticated")
                let subscribed = try await reader.next()
                #expect(subscribed.channel == "metrics:host.cpu")  // the seeds' short name of the host series
                try await outbound.close(.normalClosure, reason: nil)
            }
            // A page of another site opens the socket with the user's cookie: the cookie does not count.
            var foreign = configuration
            foreign.additionalHeaders[.origin] = "https://evil.example"
            try await client.ws("/ws", configuration: foreign) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                let refused = try await reader.subscribe("metrics:cpu", on: outbound)
                #expect(refused.type == "error" && refused.code == "unauthenticated")
                try await outbound.close(.normalClosure, reason: nil)
            }
            // Our own origin does.
            var own = configuration
            own.additionalHeaders[.origin] = "http://localhost:\(try #require(client.port))"
            try await client.ws("/ws", configuration: own) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                #expect(try await reader.next().type == "authenticated")
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    /// What is taken away ends on the open socket at once, with a frame that says why.
    @Test(arguments: TestEngine.all) func openSocketsLoseWhatIsTakenAway(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live) { client, _ in
            let admin = try await client.login().accessToken
            let owner = try await client.tokenForNewUser(role: .instructor, adminToken: admin)
            let colleagueEmail = "co-\(UUID().uuidString.prefix(6).lowercased())@example.com"
            let colleague = try await client.tokenForNewUser(role: .instructor, adminToken: admin, email: colleagueEmail)
            let colleagueID = try await client.userID(colleague)
            let course = try await client.createClass("revoke", token: owner)
            let added = try await client.request(.post, "/api/v1/classes/\(course.id)/instructors", token: owner, json: #"{"email":"\#(colleagueEmail)"}"#)
            #expect(added.status == .created)
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(colleague, on: outbound)
                #expect(try await reader.subscribe("class:\(course.id)", on: outbound).type == "subscribed")
                #expect(try await reader.subscribe("metrics:cpu", on: outbound).type == "subscribed")
                // Removed from the class: the class channel ends, the metrics stay.
                #expect(try await client.request(.delete, "/api/v1/classes/\(course.id)/instructors/\(colleagueID)", token: owner).status == .noContent)
                let ended = try await reader.next()
                #expect(ended.type == "error" && ended.code == "revoked" && ended.channel == "class:\(course.id)")
                // Deleted: the socket ends.
                #expect(try await client.request(.delete, "/api/v1/users/\(colleagueID)", token: admin).status == .noContent)
                let revoked = try await reader.next()
                #expect(revoked.type == "error" && revoked.code == "revoked" && revoked.channel == nil)
            }
        }
    }

    @Test(arguments: TestEngine.all) func aPlainGetOnTheWebSocketPathIs426(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine) { client, _ in
            let response = try await client.request(.get, "/ws")
            #expect(response.status == .upgradeRequired)
        }
    }

    /// A client that stops reading is closed once its queue is full, while a client that keeps
    /// up receives every message.
    /// No task waits on an upgraded socket, so the server closes them itself when it stops: the
    /// client gets a close frame that says to come back later (1001).
    @Test func stoppingTheServerTellsOpenSocketsToComeBackLater() async throws {
        let socket = Mutex<StalledClient?>(nil)
        try await TestApp.run(.live) { client, parts in
            let session = try await WebTests.browserLogin(client)
            socket.withLock { $0 = try? StalledClient(port: client.port ?? 0, path: "/ws", cookie: "pb_session=\(session)") }
            try await waitUntil { parts.telemetry.currentWebSocketConnections == 1 }
        }
        let client = try #require(socket.withLock { $0 })
        let received = await client.receivedUntilClosed(within: .seconds(10))
        let goingAway: [UInt8] = [0x03, 0xE9] + Array("the server is restarting".utf8)
        #expect(received.indices.contains { received[$0...].starts(with: goingAway) }, "\(String(decoding: received, as: UTF8.self))")
    }

    @Test(arguments: TestEngine.all) func aSlowConsumerIsDroppedWithoutSlowingOthers(engine: TestEngine) async throws {
        try await TestApp.run(engine: engine, .live, configure: { $0.sendQueueMessages = 16 }) { client, parts in
            let token = try await client.login().accessToken
            let session = try await WebTests.browserLogin(client)
            let stalled = try StalledClient(port: try #require(client.port), path: "/ws/metrics?type=flood", cookie: "pb_session=\(session)")
            try await waitUntil { parts.telemetry.currentWebSocketConnections == 1 }
            let payload = String(repeating: "x", count: 8 * 1024)
            try await client.ws("/ws", configuration: bigFrames) { inbound, outbound, _ in
                var reader = LiveReader(inbound)
                _ = try await reader.authenticate(token, on: outbound)
                _ = try await reader.subscribe("metrics:flood", on: outbound)
                var received = 0
                // Publish in rounds the reading client keeps up with, until the stalled one is dropped.
                while parts.telemetry.droppedWebSocketClients == 0 {
                    for _ in 0..<8 { parts.hub.publish(channel: "metrics:flood", data: ["pad": payload]) }
                    for _ in 0..<8 {
                        let message = try await reader.next()
                        #expect(message.seq == received + 1)
                        received += 1
                    }
                    try #require(received < 50_000, "the stalled client was never dropped")
                }
                #expect(received == Int(parts.hub.sequence(of: "metrics:flood")))
                try await outbound.close(.normalClosure, reason: nil)
            }
            // The stalled client's connection is gone; only now may it be released.
            try await waitUntil { parts.telemetry.currentWebSocketConnections == 0 }
            withExtendedLifetime(stalled) {}
        }
    }
}

/// Where a subscriber's messages go in tests of the hub alone: a list.
final class RecordingOutlet: LiveOutlet {
    private let written = Mutex<[String]>([])

    var texts: [String] { written.withLock { $0 } }

    static func subscriber() -> (LiveSubscriber, RecordingOutlet) {
        let outlet = RecordingOutlet()
        return (LiveSubscriber(queueCapacity: 100, outlet: outlet) {}, outlet)
    }

    func write(_ text: String, done: @escaping @Sendable () -> Void) {
        written.withLock { $0.append(text) }
        done()
    }

    func close(code: WebSocketErrorCode, reason: String) {}
}
