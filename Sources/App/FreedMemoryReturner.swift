import Logging
import PulseboardKernel
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Gives the memory of closed connections back to the system. glibc's allocator keeps freed
/// memory for reuse: after 10,000 WebSockets closed, the server stayed at their peak (measured by
/// `pulseboard-bench --runs sockets`; a second wave reused it, so it was not a leak). A
/// `malloc_trim(0)` every ten seconds, when WebSockets have closed since the last one, returns the
/// free pages.
package struct FreedMemoryReturner: Service {
    let telemetry: Telemetry
    let logger: Logger
    var interval: Duration = .seconds(10)

    package func run() async throws {
        var lastSeen = telemetry.closedWebSocketConnections
        while !Task.isCancelledOrShuttingDown {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            let closed = telemetry.closedWebSocketConnections
            guard closed != lastSeen else { continue }
            lastSeen = closed
            guard let trim = Self.mallocTrim else { continue }
            let clock = ContinuousClock()
            let started = clock.now
            _ = trim(0)
            logger.debug("Returned freed memory", metadata: ["took": "\(clock.now - started)"])
        }
    }

    /// glibc's `malloc_trim`, looked up at run time: Swift's Glibc module does not import
    /// `<malloc.h>`, and another C library may not have it (then nothing is trimmed).
    static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
            guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") else { return nil }
            return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
            return nil
        #endif
    }()
}
