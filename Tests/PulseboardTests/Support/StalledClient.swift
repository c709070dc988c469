import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A raw socket that sends something and then stalls: a WebSocket client that never reads (a
/// consumer that cannot keep up; a library client would keep reading into memory), or a client
/// that never finishes its request head.
final class StalledClient: @unchecked Sendable {  // one socket, used by one test at a time
    private let descriptor: Int32

    /// A WebSocket upgrade with a session cookie, after which the client never reads.
    convenience init(port: Int, path: String, cookie: String) throws {
        try self.init(
            port: port,
            sending: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: \(cookie)\r\n\r\n")
    }

    /// Sends `text` (say, half a request head) and then nothing more.
    init(port: Int, sending text: String) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EIO) }
        var small: Int32 = 4096
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        send(text)
    }

    /// Sends `text` in pieces of `chunk` bytes, one every `interval`, from a thread of its own:
    /// at a pace that the concurrency pool, busy with the other tests and the server in this
    /// process, cannot stretch.
    func sendPaced(_ text: String, chunk: Int, every interval: Duration) async {
        let pieces = stride(from: 0, to: text.utf8.count, by: chunk).map {
            String(decoding: Array(text.utf8)[$0..<min($0 + chunk, text.utf8.count)], as: UTF8.self)
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                for piece in pieces {
                    self.send(piece)
                    Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
                }
                done.resume()
            }
        }
    }

    /// Sends more: the next drop of a trickle.
    func send(_ text: String) {
        _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Whether the server closes the connection within `timeout` (reading and discarding what it
    /// sends).
    func closedByServer(within timeout: Duration) async -> Bool {
        await read(within: timeout, keeping: false) { _ in false }.closed
    }

    /// What the server answers within `timeout`, once a response head has arrived (empty if
    /// none did).
    func response(within timeout: Duration) async -> String {
        String(decoding: await read(within: timeout, keeping: true) { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }.received, as: UTF8.self)
    }

    /// Everything the server sends until it closes the connection or `timeout` passes.
    func receivedUntilClosed(within timeout: Duration) async -> [UInt8] {
        await read(within: timeout, keeping: true) { _ in false }.received
    }

    /// Reads until `enough` says so of what was kept, the server closes, or `timeout` passes
    /// (what arrives is dropped unless `keeping`). Polls without
    /// blocking and sleeps in between, so as not to hold a thread of the concurrency pool that
    /// the server in the same process needs.
    private func read(within timeout: Duration, keeping: Bool, until enough: ([UInt8]) -> Bool) async -> (received: [UInt8], closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var descriptors = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&descriptors, 1, 0) > 0 {
                let count = recv(descriptor, &buffer, buffer.count, 0)
                if count <= 0 { return (received, true) }
                if keeping { received += buffer[..<count] }
                if enough(received) { return (received, false) }
                continue
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (received, false)
    }

    deinit {
        close(descriptor)
    }
}
