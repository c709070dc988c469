import ArgumentParser
import Foundation
import Logging
import PulseboardApp
import PulseboardDatabase
import PulseboardKernel

@main
struct PulseboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pulseboard",
        abstract: "Realtime analytics server: metrics in over HTTP, live over WebSocket, history and dashboards.",
        discussion: """
            Every setting is a flag, or a PULSEBOARD_* environment variable when the flag is absent, or its default.
            Secrets are read from the environment only (a flag would show in the process list):
              PULSEBOARD_JWT_SECRET      HS256 secret, at least 32 bytes (default: generated into <data-dir>/jwt-secret)
              PULSEBOARD_ADMIN_PASSWORD  password of the first admin (default: generated and printed once)
            """,
        subcommands: [
            Serve.self, Migrate.self, UserCommand.self, TokenCommand.self, ClassCommand.self, Simulate.self, Backup.self, Health.self, LogsCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}

/// Reads a setting: the flag when given, else its environment variable, else the default.
struct SettingReader {
    let environment = ProcessInfo.processInfo.environment

    func value<T: LosslessStringConvertible>(_ flag: T?, _ setting: Setting, default fallback: T) throws -> T {
        if let flag { return flag }
        let variable = setting.variable
        guard let text = environment[variable] else { return fallback }
        guard let value = T(text) else { throw ValidationError("\(variable)=\(text) is not a valid value.") }
        return value
    }

    func bool(_ flag: Bool, _ setting: Setting, default fallback: Bool) throws -> Bool {
        if flag { return !fallback }
        let variable = setting.variable.prefix { $0 != "=" }
        guard let text = environment[String(variable)]?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ValidationError("\(variable)=\(text) is not true or false.")
        }
    }

    /// A comma-separated list, its items trimmed; empty when not set.
    func list(_ flag: String?, _ setting: Setting) throws -> [String] {
        try value(flag, setting, default: "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The port to listen on: the flag, else `PULSEBOARD_PORT`, else the platform's `PORT` (set by
    /// hosting platforms that choose the port), else 8080.
    func port(_ flag: Int?) throws -> Int {
        guard flag == nil, environment[Setting.port.variable] == nil, let platform = environment["PORT"] else {
            return try value(flag, .port, default: ServerConfig().port)
        }
        guard let port = Int(platform) else { throw ValidationError("PORT=\(platform) is not a valid port.") }
        return port
    }

    /// A variable's value when set and not empty: for secrets, read only from the environment, and
    /// for texts whose flag the caller has already looked at.
    func text(_ setting: Setting) -> String? {
        environment[setting.variable].flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension NameSpecification {
    /// A setting's flag, as the settings list names it.
    static func setting(_ setting: Setting) -> Self { .customLong(setting.flag ?? "") }
}

extension ArgumentHelp {
    static func setting(_ setting: Setting) -> Self { ArgumentHelp(setting.help) }
}

struct DataOptions: ParsableArguments {
    @Option(name: .setting(.dataDir), help: .setting(.dataDir)) var dataDir: String?
    @Option(name: .setting(.databaseURL), help: .setting(.databaseURL)) var databaseURL: String?

    /// The storage part of the server's configuration.
    func config() throws -> ServerConfig {
        let settings = SettingReader()
        var config = ServerConfig()
        config.dataDirectory = try settings.value(dataDir, .dataDir, default: config.dataDirectory)
        config.databaseURL = databaseURL ?? settings.text(.databaseURL)
        return config
    }

    /// Runs `body` with the configured database, migrated.
    func withStore<T: Sendable>(_ body: @Sendable (any Database) async throws -> T) async throws -> T {
        var logger = Logger(label: "pulseboard")
        logger.logLevel = .warning
        return try await Storage.open(try config(), logger: logger).whileRunning { store in
            try await store.migrate(Migrations.all)
            return try await body(store)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database migrations and exit.")
    @OptionGroup var data: DataOptions

    func run() async throws {
        try await data.withStore { _ in }
        print("The database is up to date.")
    }
}
