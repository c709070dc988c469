import Foundation
import Testing

@testable import PulseboardDatabase
@testable import PulseboardKernel
@testable import PulseboardPostgres

/// A PostgreSQL that, like managed services, takes TCP connections over TLS only, with a
/// certificate from a CA this test makes (openssl): each `sslmode` connects or fails as libpq's does.
@Suite("PostgreSQL over TLS", .timeLimit(.minutes(3)))
struct PostgresTLSTests {
    @Test(.enabled(if: TestPostgres.isAvailable && ProcessInfo.processInfo.environment["PULSEBOARD_TEST_DATABASE_URL"] == nil))
    func eachSSLModeConnectsOrFailsAsLibpqWould() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.makeCertificates(in: folder)
        let server = TestPostgres(tls: .init(certificate: folder + "/server.crt", key: folder + "/server.key"))
        let base: String
        do {
            base = try await server.server()
        } catch {
            await server.shutDown()
            throw error
        }
        for (options, connects) in [
            ("sslmode=require", true),
            ("sslmode=prefer", true),
            ("", true),  // prefer, as libpq
            ("sslmode=verify-ca&sslrootcert=\(folder)/ca.crt", true),
            ("sslmode=verify-full&sslrootcert=\(folder)/ca.crt", true),
            ("sslmode=verify-full&sslrootcert=\(folder)/other-ca.crt", false),
            ("sslmode=verify-ca&sslrootcert=\(folder)/other-ca.crt", false),
            ("sslmode=disable", false),  // the server takes no plain TCP
        ] {
            let url = options.isEmpty ? base : base + "?" + options
            // A connection that should be made gets longer on a loaded run (the suite's start);
            // one that should fail is refused at the handshake, and the wait only bounds retries.
            #expect(await Self.usesTLS(url, within: .seconds(connects ? 30 : 10)) == (connects ? true : nil), "\(options)")
        }
        await server.shutDown()
    }

    @Test func urlOptionsAreCheckedWhenGiven() throws {
        for bad in ["sslmode=allow-maybe", "sslmode=verify-full&sslrootcert=/no/such/file", "pool=5"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try PostgresEngine.configuration("postgres://u@127.0.0.1/db?" + bad) }
        }
        #expect(try PostgresEngine.configuration("postgres://u@127.0.0.1/db", poolSize: 40).options.maximumConnections == 40)
    }

    /// Whether a connection made with `url` runs over TLS; nil when none could be made within
    /// `wait`: a TLS handshake with a new backend took more than 2 s on a loaded CI machine, and
    /// more than 10 s once.
    static func usesTLS(_ url: String, within wait: Duration) async -> Bool? {
        try? await PostgresEngine(url: url, logger: TestApp.logger, connectionWait: wait).whileRunning { engine in
            let row = try await engine.select(SQLStatement("SELECT CASE WHEN ssl THEN 1 ELSE 0 END FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
            return row.first?.first?.int == 1
        }
    }

    /// A CA, a server certificate it signs for 127.0.0.1, and another CA that signed nothing.
    static func makeCertificates(in folder: String) throws {
        let extensions = folder + "/server.ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".write(
            toFile: extensions, atomically: true, encoding: .utf8)
        for command in [
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=pulseboard-test-ca -keyout \(folder)/ca.key -out \(folder)/ca.crt",
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=another-ca -keyout \(folder)/other-ca.key -out \(folder)/other-ca.crt",
            "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout \(folder)/server.key -out \(folder)/server.csr",
            "x509 -req -in \(folder)/server.csr -CA \(folder)/ca.crt -CAkey \(folder)/ca.key -CAcreateserial -days 1 -extfile \(extensions) -out \(folder)/server.crt",
        ] {
            let argv = ["/usr/bin/openssl"] + command.split(separator: " ").map(String.init)
            let output = folder + "/openssl.out"
            guard TestPostgres.spawnAndWait(argv, outputPath: output) == 0 else {
                throw TestPostgresError(description: "openssl \(command): " + ((try? String(contentsOfFile: output, encoding: .utf8)) ?? ""))
            }
        }
    }
}
