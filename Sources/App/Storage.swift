import Foundation
import Logging
import PulseboardDatabase
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
            let database = try PostgresEngine(url: url, logger: logger, connectionWait: config.databaseWait)
            return (database, PostgresMetricsStore(engine: database, instanceID: instanceID))
        }
        try Bootstrap.prepareDataDirectory(config.dataDirectory)
        let database = try SQLiteEngine(path: config.databasePath)
        return (database, SQLiteMetricsStore(engine: database))
    }
}
