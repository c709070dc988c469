import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import PulseboardApp
import PulseboardKernel

/// `pulseboard backup FILE`: an online copy of the SQLite database.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the SQLite database into a new file while the server runs (PostgreSQL: use pg_dump).")
    @OptionGroup var data: DataOptions
    @Argument(help: "The new file.") var file: String

    func run() async throws {
        do {
            try Storage.backup(try data.config(), to: file)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        print("Backed up into \(file).")
    }
}

/// `pulseboard health`: for container health checks, where no curl or wget may be installed.
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running server's /health; exit 0 when it answers 200 (the database answers), 1 otherwise.")
    @Option(help: "The server (default: http://127.0.0.1 on the configured port).") var url: String?

    func run() async throws {
        let address = try url ?? "http://127.0.0.1:\(SettingReader().port(nil))"
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: address + "/health"), timeout: .seconds(5))
            print(String(buffer: try await response.body.collect(upTo: 64 * 1024)))
            guard response.status == .ok else { throw ExitCode.failure }
        } catch let error as ExitCode {
            throw error
        } catch {
            print("No answer from \(address): \(error)")
            throw ExitCode.failure
        }
    }
}
