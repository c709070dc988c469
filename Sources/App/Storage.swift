import Foundation
import Logging
import PulseboardDatabase
import PulseboardKernel
import PulseboardMetrics
import PulseboardPostgres
import PulseboardSQLite

/// The engine a configuration names: PostgreSQL for a database URL (several instances may
/// share it), else SQLite in the data folder; with the metrics store written for that engine.
package enum Storage {
    /// The database alone: for the command line's chores.
    package static func open(_ config: ServerConfig, logger: Logger) throws -> any Database {
        try open(config, instanceID: UUID().uuidString.lowercased(), logger: logger).database
    }

    static func open(_ config: ServerConfig, instanceID: String, logger: Logger) throws -> (database: any Database, metrics: any MetricsStore) {
        if let url = config.databaseURL {
            let database = try PostgresEngine(url: url, logger: logger, connectionWait: config.databaseWait, poolSize: config.databasePoolSize)
            return (database, PostgresMetricsStore(engine: database, instanceID: instanceID))
        }
        try Bootstrap.prepareDataDirectory(config.dataDirectory)
        let database = try SQLiteEngine(path: config.databasePath)
        return (database, SQLiteMetricsStore(engine: database))
    }

    /// `pulseboard backup`: the SQLite database copied into `path`, a new file, while the server
    /// runs. PostgreSQL has its own tools (pg_dump, see docs/operations.md).
    package static func backup(_ config: ServerConfig, to path: String) throws {
        guard config.databaseURL == nil else {
            throw ConfigurationError("This server uses PostgreSQL: back it up with pg_dump (docs/operations.md).")
        }
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw ConfigurationError("No database at \(config.databasePath).")
        }
        guard !FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("\(path) exists; a backup goes into a new file.") }
        try SQLiteEngine(path: config.databasePath).backup(to: path)
    }
}
