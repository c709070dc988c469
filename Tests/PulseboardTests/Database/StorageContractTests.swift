import Foundation
import Testing

@testable import PulseboardAccounts
@testable import PulseboardApp
@testable import PulseboardDatabase
@testable import PulseboardKernel
@testable import PulseboardMetrics
@testable import PulseboardPostgres
@testable import PulseboardSQLite

/// What every engine must do alike, tested on the engines themselves (no server): portable
/// statements, rows stored once, retention, idempotency keys that expire, migrations.
@Suite("Storage contract", .throwawayPostgres) struct StorageContractTests {
    /// A database of `engine` for the duration of `body`: SQLite in a temporary folder, or a new
    /// PostgreSQL database; empty, or migrated to the current schema.
    static func withDatabase(
        _ engine: TestEngine, migrated: Bool = true, _ body: @Sendable (any Database, any MetricsStore) async throws -> Void
    ) async throws {
        let config = TestApp.config()
        defer { try? FileManager.default.removeItem(atPath: config.dataDirectory) }
        let database: any Database
        let metrics: any MetricsStore
        switch engine {
        case .sqlite:
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
            let sqlite = try SQLiteEngine(path: config.databasePath)
            (database, metrics) = (sqlite, SQLiteMetricsStore(engine: sqlite))
        case .postgres:
            let url = migrated ? try await TestPostgres.shared.newDatabase() : try await TestPostgres.shared.emptyDatabase()
            // As TestApp waits for the database: the suites share a loaded 2-core machine.
            let postgres = try PostgresEngine(url: url, logger: TestApp.logger, connectionWait: TestApp.config().databaseWait)
            (database, metrics) = (postgres, PostgresMetricsStore(engine: postgres, instanceID: "test"))
        }
        try await database.whileRunning { database in
            if migrated { try await database.migrate(Migrations.all) }
            try await body(database, metrics)
        }
    }

    @Test(arguments: TestEngine.all)
    func aQuestionMarkInAStringLiteralIsNotAPlaceholder(engine: TestEngine) async throws {
        try await Self.withDatabase(engine) { database, _ in
            let rows = try await database.select(SQLStatement("SELECT 'why?', 'it''s ?', ?", .text("bound")))
            #expect(rows == [[.text("why?"), .text("it's ?"), .text("bound")]])
        }
    }

    @Test(arguments: TestEngine.all)
    func rowsDecodeByColumnNameAndAShapeThatDoesNotFitIsAnError(engine: TestEngine) async throws {
        struct Probe: Decodable, Equatable {
            var someNumber: Int64
            var someText: String
            var createdAt: Date
            var maybe: Double?
            var flag: Bool
        }
        try await Self.withDatabase(engine) { database, _ in
            let rows = try await database.select(
                SQLStatement(
                    "SELECT 'x' AS some_text, CAST(NULL AS DOUBLE PRECISION) AS maybe, 1 AS flag, CAST(? AS BIGINT) AS created_at, CAST(7 AS BIGINT) AS some_number",
                    .integer(1_800_000_000_123)),
                as: Probe.self)
            #expect(rows == [Probe(someNumber: 7, someText: "x", createdAt: Date(millisecondsSince1970: 1_800_000_000_123), maybe: nil, flag: true)])
            // A missing column and a column of the wrong type are errors, not defaults.
            await #expect(throws: DecodingError.self) {
                _ = try await database.select(SQLStatement("SELECT 'x' AS some_text"), as: Probe.self)
            }
            await #expect(throws: DecodingError.self) {
                _ = try await database.select(
                    SQLStatement("SELECT 'x' AS some_text, 1 AS flag, CAST(1 AS BIGINT) AS created_at, 'seven' AS some_number"), as: Probe.self)
            }
        }
    }

    @Test(arguments: TestEngine.all)
    func rowsOnceReportsWhichRowsWereNewAndMarksThemPending(engine: TestEngine) async throws {
        try await Self.withDatabase(engine) { database, metrics in
            try await database.transaction([SQLStatement("CREATE TABLE pending_names (name TEXT PRIMARY KEY)")])
            func commit(_ rows: [[SQLValue]]) async throws -> [Int] {
                let once = RowsOnce(table: "server_secrets", columns: ["name", "value"], keyColumns: 1, rows: rows, pendingTable: "pending_names")
                let outcomes = try await metrics.commit([IngestBatch(rowsOnce: once) { _ in }], now: Date())
                guard case .stored(_, let newRows) = outcomes.first else { throw UnexpectedRow(table: "server_secrets", row: []) }
                return newRows
            }
            #expect(try await commit([[.text("a"), .text("1")], [.text("b"), .text("2")]]) == [0, 1])
            // Known keys, and a key repeated within the rows, are stored once.
            #expect(try await commit([[.text("b"), .text("3")], [.text("c"), .text("4")], [.text("c"), .text("5")]]) == [1])
            let stored = try await database.select(SQLStatement("SELECT name, value FROM server_secrets ORDER BY name"))
            #expect(stored == [[.text("a"), .text("1")], [.text("b"), .text("2")], [.text("c"), .text("4")]])
            // Only new rows are pending: a repeat of a row already handled is not handled again.
            try await database.transaction([SQLStatement("DELETE FROM pending_names WHERE name = 'a'")])
            #expect(try await commit([[.text("a"), .text("6")]]) == [])
            let pending = try await database.select(SQLStatement("SELECT name FROM pending_names ORDER BY name"))
            #expect(pending == [[.text("b")], [.text("c")]])

            // Requests that share a commit are stored together, and each is told its own new
            // rows: a key new to the table counts for the first request that has it.
            let requests: [[[SQLValue]]] = [
                [[.text("d"), .text("7")], [.text("a"), .text("8")]],
                [[.text("e"), .text("9")], [.text("d"), .text("10")]],
                [],
                [[.text("e"), .text("11")], [.text("f"), .text("12")]],
            ]
            let outcomes = try await metrics.commit(
                requests.map { rows in
                    IngestBatch(
                        rowsOnce: RowsOnce(table: "server_secrets", columns: ["name", "value"], keyColumns: 1, rows: rows, pendingTable: "pending_names")
                    ) { _ in }
                }, now: Date())
            #expect(
                outcomes == [
                    .stored(points: 0, newRows: [0]), .stored(points: 0, newRows: [0]), .stored(points: 0, newRows: []), .stored(points: 0, newRows: [1]),
                ])
            let names = try await database.select(SQLStatement("SELECT name, value FROM server_secrets WHERE name > 'c' ORDER BY name"))
            #expect(names == [[.text("d"), .text("7")], [.text("e"), .text("9")], [.text("f"), .text("12")]])
            #expect(try await database.selectCount(SQLStatement("SELECT COUNT(*) FROM pending_names")) == 5)
        }
    }

    @Test(arguments: TestEngine.all)
    func retentionDropsWhatIsPastItsTimeAndKeepsTheRest(engine: TestEngine) async throws {
        try await Self.withDatabase(engine) { database, metrics in
            let day: Int64 = 86_400_000
            let now = Date(millisecondsSince1970: 1_800_000_000_000)
            let nowMs = now.millisecondsSince1970
            let points = [nowMs - 10 * day, nowMs - 2 * day, nowMs - 60_000].map {
                MetricPoint(series: SeriesKey(name: "kept"), timestampMs: $0, value: 1)
            }
            _ = try await metrics.commit([IngestBatch(points: points, idempotencyKey: "old")], now: now.addingTimeInterval(-3 * 86_400))
            _ = try await metrics.commit([IngestBatch(points: [], idempotencyKey: "new")], now: now)
            let user = try await Accounts(store: database).createUser(email: "a@example.com", passwordHash: "x", role: .student, audit: nil)
            try await Accounts(store: database).insertSession(
                hash: "expired", userID: user.id, kind: .browser, family: "f1", expiresAt: now.addingTimeInterval(-1))
            try await Accounts(store: database).insertSession(
                hash: "valid", userID: user.id, kind: .browser, family: "f2", expiresAt: now.addingTimeInterval(3600))

            try await metrics.prune(pointsBefore: now.addingTimeInterval(-7 * 86_400), idempotencyKeysBefore: now.addingTimeInterval(-86_400), now: now)
            try await Accounts(store: database).deleteExpiredSessions(now: now)

            let id = try #require(try await metrics.seriesID(SeriesKey(name: "kept")))
            #expect(try await metrics.points(seriesID: id, fromMs: 0, toMs: nowMs, limit: 10).map(\.timestampMs) == [nowMs - 2 * day, nowMs - 60_000])
            // The rollups lose the same buckets as the points they summarise.
            #expect(try await metrics.countRollup(.minute, seriesID: id, fromMs: 0, toMs: nowMs) == 2)
            #expect(try await metrics.countRollup(.hour, seriesID: id, fromMs: 0, toMs: nowMs) == 2)
            // The expired idempotency key may be used again; the recent one is still a duplicate.
            #expect(try await metrics.commit([IngestBatch(idempotencyKey: "old")], now: now) == [.stored(points: 0)])
            #expect(try await metrics.commit([IngestBatch(idempotencyKey: "new")], now: now) == [.duplicate])
            #expect(try await Accounts(store: database).sessionUser(hash: "valid", kind: .browser, now: now) == user.id)
            let sessions = try await database.select(SQLStatement("SELECT token_hash FROM sessions"))
            #expect(sessions == [[.text("valid")]])
        }
    }

    @Test(arguments: TestEngine.all)
    func migrationsRunFromAnEmptyDatabaseAndFromTheLastReleasedSchema(engine: TestEngine) async throws {
        try await Self.withDatabase(engine, migrated: false) { database, metrics in
            // The schema of the last release (before the chunk store), with data in it.
            let released = Migrations.all.filter { $0.version <= 10 }
            try await database.migrate(released)
            let owner = try await Accounts(store: database).createUser(email: "o@example.com", passwordHash: "x", role: .instructor, audit: nil)
            try await database.transaction([
                SQLStatement(
                    "INSERT INTO classes (name, code, description, owner_id, token_hash, token_prefix, created_at, updated_at) VALUES ('C', 'c1', '', ?, 'h', 'p', 0, 0)",
                    .integer(owner.id)),
                // One event applied to the class picture, one not yet.
                SQLStatement(
                    """
                    INSERT INTO events (class_id, event_id, event_type, event_time, received_at, payload, processed_at)
                    VALUES (1, 'applied', 'cell_executed', 0, 0, '{}', 5), (1, 'waiting', 'cell_executed', 0, 0, '{}', NULL)
                    """),
            ])
            // Points of two series over three days, out of order and with a repeated timestamp,
            // as the points table of that release kept them.
            let day: Int64 = 86_400_000
            let start: Int64 = 1_800_000_000_000
            var legacy: [(series: Int64, ts: Int64, value: Double)] = (0..<500).map { i in (1, start + Int64(i) * 600_000, Double(i) / 4) }
            legacy.shuffle()
            legacy += [(1, start, 99), (2, start + 2 * day, -1.5)]
            try await database.transaction(
                [SQLStatement("INSERT INTO series (name, tags) VALUES ('a', '{}'), ('b', '{}')")]
                    + legacy.map {
                        SQLStatement("INSERT INTO points (series_id, ts, value) VALUES (?, ?, ?)", .integer($0.series), .integer($0.ts), .real($0.value))
                    })

            // Upgrading keeps the data, fills the new columns with their defaults and moves the
            // points into chunks; running the migrations again changes nothing.
            try await database.migrate(Migrations.all)
            try await database.migrate(Migrations.all)
            let versions = try await database.select(SQLStatement("SELECT version FROM schema_version ORDER BY version"))
            #expect(versions.compactMap { $0.first?.int } == Migrations.all.map { Int64($0.version) })
            let classes = try await database.select(SQLStatement("SELECT code, hold_new_students FROM classes"))
            #expect(classes == [[.text("c1"), .integer(0)]])
            #expect(try await database.select(SQLStatement("SELECT class_id, event_id FROM events_unapplied")) == [[.integer(1), .text("waiting")]])
            for id: Int64 in [1, 2] {
                let expected = legacy.filter { $0.series == id }.map { (timestampMs: $0.ts, value: $0.value) }.sorted(by: Chunk.inOrder)
                let found = try await metrics.points(seriesID: id, fromMs: 0, toMs: .max, limit: 1_000)
                #expect(found.map(\.timestampMs) == expected.map(\.timestampMs) && found.map(\.value) == expected.map(\.value))
            }
            await #expect(throws: (any Error).self) { try await database.select(SQLStatement("SELECT COUNT(*) FROM points")) }
        }
    }
}
