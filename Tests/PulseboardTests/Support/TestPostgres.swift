import Foundation
import Testing

@testable import PulseboardApp
@testable import PulseboardKernel
@testable import PulseboardPostgres

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server: `initdb` and `pg_ctl` in a temporary folder, trust
/// authentication, a free loopback port. `shared` is started on first use by a suite that holds
/// it (the `.throwawayPostgres` trait) and stopped and deleted when the last such suite ends;
/// each test gets its own database, a copy of a migrated template. When
/// `PULSEBOARD_TEST_DATABASE_URL` names a server, that one is used instead.
actor TestPostgres {
    static let shared = TestPostgres()

    /// A server certificate and its key: the server then takes TCP connections over TLS only.
    struct TLSFiles {
        var certificate: String
        var key: String
    }

    let tls: TLSFiles?

    init(tls: TLSFiles? = nil) {
        self.tls = tls
    }
    static let binaries = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]
        .first { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") }

    /// Whether the PostgreSQL half of the suite can run here.
    static var isAvailable: Bool {
        ProcessInfo.processInfo.environment["PULSEBOARD_TEST_DATABASE_URL"] != nil || binaries != nil
    }

    private var serverURL: String?
    private var cluster: (bin: String, directory: String, port: Int, asRoot: Bool)?
    /// The server with its migrated template database, made once however many tests ask at once.
    private var template: Task<String, any Error>?

    /// The URL of a new, empty, migrated database.
    func newDatabase() async throws -> String {
        if template == nil {
            template = Task { try await self.makeTemplate() }
        }
        let base = try await template!.value
        let name = "test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        try psql(base, "CREATE DATABASE \(name) TEMPLATE pulseboard_template")
        return Self.url(base, database: name)
    }

    /// The URL of a new database without any table (for migration tests).
    func emptyDatabase() async throws -> String {
        let base = try await server()
        let name = "empty_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        try psql(base, "CREATE DATABASE \(name)")
        return Self.url(base, database: name)
    }

    private func makeTemplate() async throws -> String {
        let base = try await server()
        try psql(base, "DROP DATABASE IF EXISTS pulseboard_template")
        try psql(base, "CREATE DATABASE pulseboard_template")
        // A loaded run may take seconds for a first connection: wait as a server's start does.
        try await PostgresEngine(url: Self.url(base, database: "pulseboard_template"), logger: TestApp.logger, connectionWait: .seconds(30)).whileRunning {
            try await $0.migrate(Migrations.all)
        }
        // Copies need the template without connections: wait until the pool's have gone.
        for _ in 0..<100 {
            if (try? psql(
                base, "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = 'pulseboard_template') THEN RAISE 'busy'; END IF; END $$")) != nil
            {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return base
    }

    /// The same server URL with another database.
    static func url(_ base: String, database: String) -> String {
        var components = URLComponents(string: base)!
        components.path = "/" + database
        return components.string!
    }

    /// The server's URL (its `postgres` database), starting it on first use.
    func server() async throws -> String {
        if let serverURL { return serverURL }
        if let given = ProcessInfo.processInfo.environment["PULSEBOARD_TEST_DATABASE_URL"] {
            serverURL = given
            return given
        }
        let bin = try #require(Self.binaries, "PostgreSQL binaries not found")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = Self.freePort()
        let asRoot = getuid() == 0
        if asRoot { try run("/bin/chown", ["postgres", directory]) }
        try run(bin + "/initdb", ["-D", directory + "/data", "-A", "trust", "-U", "postgres", "--no-sync"], asPostgres: asRoot)
        if let tls {
            // As managed services run it: TCP only over TLS (hostssl), the key readable by its owner only.
            let data = directory + "/data"
            try FileManager.default.removeItem(atPath: data + "/pg_hba.conf")
            try "local all all trust\nhostssl all all 127.0.0.1/32 trust\n".write(toFile: data + "/pg_hba.conf", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: tls.certificate, toPath: data + "/server.crt")
            try FileManager.default.copyItem(atPath: tls.key, toPath: data + "/server.key")
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: data + "/server.key")
            if asRoot { try run("/bin/chown", ["postgres", data + "/pg_hba.conf", data + "/server.crt", data + "/server.key"]) }
        }
        cluster = (bin, directory, port, asRoot)
        try start()
        let url = "postgres://postgres@127.0.0.1:\(port)/postgres"
        serverURL = url
        return url
    }

    /// Suites running now that hold `shared` (see `ThrowawayPostgres`).
    private var holders = 0

    func hold() {
        holders += 1
    }

    /// The last holder gone, the server is stopped and its folder deleted; a later suite starts
    /// a new one.
    func letGo() {
        holders -= 1
        if holders == 0 { shutDown() }
    }

    /// Stops the server at once and deletes its folder (nothing of a test database is kept).
    func shutDown() {
        guard let cluster else { return }
        let command = [cluster.bin + "/pg_ctl", "-D", cluster.directory + "/data", "-m", "immediate", "-w", "stop"]
        try? run(command[0], Array(command.dropFirst()), asPostgres: cluster.asRoot)
        try? FileManager.default.removeItem(atPath: cluster.directory)
        (self.cluster, serverURL, template) = (nil, nil, nil)
    }

    /// Stops this server (for outage tests; use an instance of your own, not `shared`).
    func stop() throws {
        let cluster = try #require(cluster)
        try run(cluster.bin + "/pg_ctl", ["-D", cluster.directory + "/data", "-m", "fast", "-w", "stop"], asPostgres: cluster.asRoot)
    }

    /// Starts the server (again, on the same port).
    func start() throws {
        let cluster = try #require(cluster)
        let ssl = tls == nil ? "" : " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
        try run(
            cluster.bin + "/pg_ctl",
            [
                "-D", cluster.directory + "/data", "-l", cluster.directory + "/server.log", "-w", "-o",
                "-p \(cluster.port) -k \(cluster.directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=1000" + ssl, "start",
            ],
            asPostgres: cluster.asRoot
        )
    }

    private func psql(_ url: String, _ sql: String) throws {
        try run("/usr/bin/psql", [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
    }

    /// Runs a command and waits for it. posix_spawn rather than Foundation's Process: the server
    /// that `pg_ctl start` leaves behind would inherit Process's internal descriptors and keep it
    /// from ever noticing that pg_ctl exited.
    private func run(_ executable: String, _ arguments: [String], asPostgres: Bool = false) throws {
        let argv = asPostgres ? ["/sbin/runuser", "-u", "postgres", "--", executable] + arguments : [executable] + arguments
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("pulseboard-pg-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        guard Self.spawnAndWait(argv, outputPath: outputPath) == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw TestPostgresError(description: "\(argv.joined(separator: " ")) failed: \(text)")
        }
    }

    /// Starts `argv` with standard output and error in `outputPath`, and returns its exit status.
    static func spawnAndWait(_ argv: [String], outputPath: String) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else is inherited: a server started here (pg_ctl start) would otherwise keep
        // the test process's sockets open, and an app under test would wait forever, at its
        // shutdown, for connections whose other end lives on in PostgreSQL. Descriptors that
        // other tests open meanwhile take the lowest free numbers, so the margin covers them.
        let highest = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }.max() ?? 0
        for descriptor in 3..<(highest + 1024) {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        guard posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ) == 0 else { return -1 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }

    static func freePort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length)
                return getsockname(descriptor, $0, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct TestPostgresError: Error, CustomStringConvertible {
    var description: String
}

/// The storage engines a storage-touching test runs against.
enum TestEngine: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    /// SQLite always; PostgreSQL when its binaries (or a server URL) are here, and otherwise a
    /// loud note that the PostgreSQL half was skipped.
    static let all: [TestEngine] = {
        if TestPostgres.isAvailable { return [.sqlite, .postgres] }
        FileHandle.standardError.write(Data("\n*** PostgreSQL is not installed: the PostgreSQL half of the suite is SKIPPED. ***\n\n".utf8))
        return [.sqlite]
    }()

    var testDescription: String { rawValue }
}
