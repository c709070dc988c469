import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import PulseboardApp
import PulseboardKernel
import PulseboardTracing

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

/// `pulseboard logs export --csv DIR`: the request log and the task progress log as the CSV
/// files of seed 003.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "The request log and the task progress log (see also the admin page /logs).", subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write api_logs.csv and task_progress_logs.csv (oldest first) into a folder, replacing files of those names.")
        @OptionGroup var data: DataOptions
        @Option(help: "The folder to write into (created when missing).") var csv: String
        @Option(help: "Only entries at or after this ISO-8601 time.") var from: String?
        @Option(help: "Only entries before this ISO-8601 time.") var to: String?

        func run() async throws {
            var filter = OperationsLogReader.Filter()
            for (text, name) in [(from, "--from"), (to, "--to")] where text != nil && Timestamp.parse(text!) == nil {
                throw ValidationError("\(name) is not an ISO-8601 time: \(text!)")
            }
            filter.from = from.flatMap(Timestamp.parse)
            filter.to = to.flatMap(Timestamp.parse)
            filter.limit = Int(Int32.max)
            filter.newestFirst = false
            let wanted = filter
            let (requests, steps) = try await data.withStore { store in
                let reader = OperationsLogReader(store: store)
                return (try await reader.requests(wanted), try await reader.steps(from: wanted.from, to: wanted.to, limit: wanted.limit))
            }
            let folder = URL(fileURLWithPath: csv)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data((CSVTable.byteOrderMark + OperationsLogCSV.requests(requests)).utf8).write(to: folder.appendingPathComponent("api_logs.csv"))
            try Data((CSVTable.byteOrderMark + OperationsLogCSV.steps(steps)).utf8).write(to: folder.appendingPathComponent("task_progress_logs.csv"))
            print("Wrote \(requests.count) requests to \(csv)/api_logs.csv and \(steps.count) task steps to \(csv)/task_progress_logs.csv.")
        }
    }
}
