import Foundation
import PulseboardAccounts
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// A class: what an instructor teaches, with the ingest token its students' JupyterLabs use.
/// A class, decoded from `classes` by column name.
public struct ClassRecord: Sendable, Equatable, Decodable {
    public var id: Int64
    public var name: String
    public var code: String
    public var description: String
    public var ownerID: Int64
    public var tokenPrefix: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Whether students who join by sending events wait for an instructor to accept them.
    public var holdNewStudents = false
    /// Until when the token this class had before its last replacement still works, if it does.
    public var previousTokenUntil: Date?
}

/// Classes in storage, through portable statements. Every change records its `audit` note in
/// its own transaction (the command line passes none).
package struct Classes {
    package let store: any Database

    private static let columnNames = [
        "id", "name", "code", "description", "owner_id", "token_prefix", "created_at", "updated_at", "hold_new_students", "previous_token_until",
    ]
    private static let columns = columnNames.joined(separator: ", ")
    /// Classes `c` that user `?` teaches: as the owner or as a co-instructor (bind the id twice).
    private static let taughtBy = "(c.owner_id = ? OR EXISTS (SELECT 1 FROM class_instructors ci WHERE ci.class_id = c.id AND ci.user_id = ?))"

    package init(store: any Database) {
        self.store = store
    }

    package func create(name: String, code: String, description: String, ownerID: Int64, token: IssuedSecret, now: Date, audit: AuditNote?) async throws
        -> ClassRecord
    {
        let rows = try await store.transaction(
            [
                SQLStatement(
                    """
                    INSERT INTO classes (name, code, description, owner_id, ingest_token, token_hash, token_prefix, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING \(Self.columns)
                    """,
                    .text(name), .text(code), .text(description), .integer(ownerID), .text(token.secret), .text(token.hash), .text(token.prefix),
                    .integer(now.millisecondsSince1970), .integer(now.millisecondsSince1970)
                )
            ] + [audit?.statement(id: .returned(byStatement: 0))].compactMap { $0 })
        guard let row = rows.first?.first else { throw StoreError.unavailable("the new class was not returned") }
        return try NamedRow.decode(row, columns: Self.columnNames, as: ClassRecord.self)
    }

    package func find(id: Int64) async throws -> ClassRecord? {
        try await store.select(SQLStatement("SELECT \(Self.columns) FROM classes WHERE id = ?", .integer(id)), as: ClassRecord.self).first
    }

    package func find(code: String) async throws -> ClassRecord? {
        try await store.select(SQLStatement("SELECT \(Self.columns) FROM classes WHERE code = ?", .text(code)), as: ClassRecord.self).first
    }

    /// The class whose ingest token has this hash, or whose replaced token it is while its
    /// grace period lasts.
    package func find(tokenHash: String, now: Date = Date()) async throws -> ClassRecord? {
        try await store.select(
            SQLStatement(
                "SELECT \(Self.columns) FROM classes WHERE token_hash = ? OR (previous_token_hash = ? AND previous_token_until > ?)",
                .text(tokenHash), .text(tokenHash), .integer(now.millisecondsSince1970)),
            as: ClassRecord.self
        ).first
    }

    /// The class whose replaced token has this hash, after its grace period (events sent with
    /// it are kept as stray events of this class).
    package func find(replacedTokenHash hash: String) async throws -> ClassRecord? {
        try await store.select(SQLStatement("SELECT \(Self.columns) FROM classes WHERE previous_token_hash = ?", .text(hash)), as: ClassRecord.self)
            .first
    }

    /// Every class (for admins, `instructorID` nil) or those an instructor teaches, by name, a page of them.
    package func list(instructorID: Int64?, skip: Int = 0, limit: Int = Int(Int32.max)) async throws -> [ClassRecord] {
        let page = [SQLValue.integer(Int64(limit)), .integer(Int64(skip))]
        let statement =
            if let instructorID {
                SQLStatement(
                    "SELECT \(Self.columns) FROM classes c WHERE \(Self.taughtBy) ORDER BY name, id LIMIT ? OFFSET ?",
                    arguments: [.integer(instructorID), .integer(instructorID)] + page)
            } else {
                SQLStatement("SELECT \(Self.columns) FROM classes ORDER BY name, id LIMIT ? OFFSET ?", arguments: page)
            }
        return try await store.select(statement, as: ClassRecord.self)
    }

    package func count(instructorID: Int64?) async throws -> Int64 {
        let statement =
            if let instructorID {
                SQLStatement("SELECT COUNT(*) FROM classes c WHERE \(Self.taughtBy)", .integer(instructorID), .integer(instructorID))
            } else {
                SQLStatement("SELECT COUNT(*) FROM classes")
            }
        return try await store.selectCount(statement)
    }

    /// Saves a class's name, code, description and owner (a taken code is `StoreError.conflict`).
    package func update(_ record: ClassRecord, now: Date, audit: AuditNote?) async throws {
        try await run(
            SQLStatement(
                "UPDATE classes SET name = ?, code = ?, description = ?, owner_id = ?, hold_new_students = ?, updated_at = ? WHERE id = ?",
                .text(record.name), .text(record.code), .text(record.description), .integer(record.ownerID), SQLValue(record.holdNewStudents),
                .integer(now.millisecondsSince1970), .integer(record.id)
            ), classID: record.id, audit: audit)
    }

    /// Deletes a class with everything recorded for it (events, progress, enrolments).
    package func delete(id: Int64, audit: AuditNote?) async throws {
        try await run(SQLStatement("DELETE FROM classes WHERE id = ?", .integer(id)), classID: id, audit: audit)
    }

    /// Replaces the ingest token. The old one keeps working for `grace` (students who have not
    /// changed their serverUrl yet lose nothing); with no grace it stops at once (it leaked).
    package func rotateToken(classID: Int64, token: IssuedSecret, grace: Duration, now: Date, audit: AuditNote?) async throws {
        let until: SQLValue = grace > .zero ? .integer(now.millisecondsSince1970 + Int64(grace.seconds * 1000)) : .null
        try await run(
            SQLStatement(
                """
                UPDATE classes SET previous_token_hash = token_hash, previous_token_until = ?,
                    ingest_token = ?, token_hash = ?, token_prefix = ?, updated_at = ? WHERE id = ?
                """,
                until, .text(token.secret), .text(token.hash), .text(token.prefix), .integer(now.millisecondsSince1970), .integer(classID)
            ), classID: classID, audit: audit)
    }

    /// The class's current ingest token; nil for a token issued before tokens were kept (migration 14).
    package func ingestToken(classID: Int64) async throws -> String? {
        try await store.selectValue(SQLStatement("SELECT ingest_token FROM classes WHERE id = ?", .integer(classID)))?.string
    }

    /// Runs a change of one class with its audit row; returns the change's rows. With `ifReturning`
    /// the row is written only when the change returned a row (it did something).
    @discardableResult
    private func run(_ change: SQLStatement, classID: Int64, audit: AuditNote?, ifReturning: Bool = false) async throws -> [SQLRow] {
        let note = audit?.statement(id: .integer(classID), onlyIf: ifReturning ? .returned(byStatement: 0) : .integer(1))
        return try await store.transaction([change] + [note].compactMap { $0 }).first ?? []
    }

    /// The class that takes tokenless events in `--open-ingest` mode (code `open`), created on
    /// first start, owned by the first admin.
    package func ensureOpenClass(now: Date) async throws -> ClassRecord {
        if let existing = try await find(code: "open") { return existing }
        guard let owner = try await Accounts(store: store).listUsers().filter({ $0.role == .admin }).min(by: { $0.id < $1.id }) else {
            throw ConfigurationError("Open ingest needs an admin to own the open class.")
        }
        do {
            return try await create(
                name: "Open classroom", code: "open", description: "Events received without a class token (--open-ingest).", ownerID: owner.id,
                token: .classToken(), now: now, audit: nil)
        } catch StoreError.conflict {
            // Another instance created it at the same moment.
            guard let existing = try await find(code: "open") else { throw StoreError.unavailable("the open class vanished") }
            return existing
        }
    }

    /// The classes a student (by email) belongs to: enrolled, or joined by sending events and
    /// not waiting to be accepted.
    package func of(studentEmail: String) async throws -> [ClassName] {
        try await store.select(
            SQLStatement(
                """
                SELECT c.id, c.name FROM class_students cs JOIN students s ON s.id = cs.student_id JOIN classes c ON c.id = cs.class_id
                WHERE s.email = ? AND cs.held = 0 ORDER BY c.name, c.id
                """,
                .text(studentEmail.lowercased())
            ),
            as: ClassName.self)
    }

    /// A class's id and name, decoded by column name.
    package struct ClassName: Decodable, Sendable, Equatable {
        package var id: Int64
        package var name: String
    }

    /// Whether the student is in one of the classes the instructor teaches.
    package func teaches(instructorID: Int64, studentEmail: String) async throws -> Bool {
        try await !store.select(
            SQLStatement(
                """
                SELECT 1 FROM class_students cs JOIN students s ON s.id = cs.student_id JOIN classes c ON c.id = cs.class_id
                WHERE s.email = ? AND \(Self.taughtBy)
                """,
                .text(studentEmail.lowercased()), .integer(instructorID), .integer(instructorID)
            )
        ).isEmpty
    }

    /// Whether the user may run the class: admins, its owner, its co-instructors.
    package func isTaught(_ record: ClassRecord, by user: UserClaims) async throws -> Bool {
        if user.role == .admin || record.ownerID == user.id { return true }
        guard user.role == .instructor else { return false }
        return try await !store.select(
            SQLStatement("SELECT 1 FROM class_instructors WHERE class_id = ? AND user_id = ?", .integer(record.id), .integer(user.id))
        ).isEmpty
    }

    /// Decoded by column name.
    struct Instructor: Codable, Sendable, Equatable {
        var id: Int64
        var email: String
        var owner: Bool
    }

    /// The owner first, then the co-instructors by email.
    func instructors(of record: ClassRecord) async throws -> [Instructor] {
        try await store.select(
            SQLStatement(
                """
                SELECT u.id, u.email, CASE WHEN u.id = ? THEN 1 ELSE 0 END AS owner FROM users u
                WHERE u.id = ? OR u.id IN (SELECT user_id FROM class_instructors WHERE class_id = ?)
                ORDER BY owner DESC, u.email
                """,
                .integer(record.ownerID), .integer(record.ownerID), .integer(record.id)),
            as: Instructor.self)
    }

    /// Adds a co-instructor; false when they already were one.
    package func addInstructor(classID: Int64, userID: Int64, now: Date, audit: AuditNote?) async throws -> Bool {
        try await !run(
            SQLStatement(
                "INSERT INTO class_instructors (class_id, user_id, added_at) VALUES (?, ?, ?) ON CONFLICT (class_id, user_id) DO NOTHING RETURNING user_id",
                .integer(classID), .integer(userID), .integer(now.millisecondsSince1970)), classID: classID, audit: audit, ifReturning: true
        ).isEmpty
    }

    /// Removes a co-instructor; false when they were not one.
    package func removeInstructor(classID: Int64, userID: Int64, audit: AuditNote?) async throws -> Bool {
        try await !run(
            SQLStatement("DELETE FROM class_instructors WHERE class_id = ? AND user_id = ? RETURNING user_id", .integer(classID), .integer(userID)),
            classID: classID, audit: audit, ifReturning: true
        ).isEmpty
    }
}

/// How long a replaced class token keeps working by default: a day, so that students who have
/// not pasted the new serverUrl yet lose no events (replace it with no grace when it leaked).
public let classTokenGrace: Duration = .seconds(24 * 3600)

/// A class ingest token as issued. It is kept, so that the class's instructors can read it again
/// (it only lets one class's students send events); events find their class by its hash.
package struct IssuedSecret: Sendable {
    let secret: String
    var hash: String { SecretToken.hash(secret) }
    var prefix: String { String(secret.prefix(12)) }

    package static func classToken() -> IssuedSecret {
        IssuedSecret(secret: SecretToken.generate(prefix: "pbc_"))
    }
}

/// The address the cell-monitor extension's `serverUrl` setting takes: absolute, since a relative
/// one pasted into JupyterLab sends every event to JupyterLab itself.
public enum ServerURL {
    /// `base` is the server as the students reach it (`https://pulse.example.edu`).
    public static func events(base: String, token: String) -> String {
        base + "/api/v1/events?token=" + token
    }

    /// A `--public-url` as given, checked and without a trailing slash.
    public static func validatedBase(_ text: String) throws -> String {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false,
            url.query == nil, url.fragment == nil
        else { throw ConfigurationError("The public URL is http(s)://host[:port][/path], without a query: '\(text)'.") }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}

/// Class chores for the command line (`pulseboard class …`).
public enum ClassAdministration {
    /// Creates a class owned by an instructor or admin; returns it with its ingest token.
    public static func create(name: String, code: String, description: String, ownerEmail: String, in store: any Database) async throws -> (
        ClassRecord, token: String
    ) {
        guard let owner = try await Accounts(store: store).user(email: ownerEmail.lowercased()), owner.role != .student else {
            throw ConfigurationError("No instructor or admin with the email \(ownerEmail).")
        }
        let token = IssuedSecret.classToken()
        do {
            let record = try await Classes(store: store).create(
                name: name, code: code, description: description, ownerID: owner.id, token: token, now: Date(),
                audit: .commandLine("create", "class", details: "code \(code)"))
            return (record, token.secret)
        } catch StoreError.conflict {
            throw ConfigurationError("The class code '\(code)' is taken.")
        }
    }

    public static func list(in store: any Database) async throws -> [ClassRecord] {
        try await Classes(store: store).list(instructorID: nil)
    }

    /// A class's current ingest token; nil for one issued before tokens were kept.
    public static func ingestToken(classID: Int64, in store: any Database) async throws -> String? {
        guard try await Classes(store: store).find(id: classID) != nil else { throw ConfigurationError("No class with id \(classID).") }
        return try await Classes(store: store).ingestToken(classID: classID)
    }

    /// Replaces a class's ingest token and returns the new one; the old one works for `grace`.
    public static func rotateToken(classID: Int64, grace: Duration, in store: any Database) async throws -> String {
        guard try await Classes(store: store).find(id: classID) != nil else { throw ConfigurationError("No class with id \(classID).") }
        let token = IssuedSecret.classToken()
        try await Classes(store: store).rotateToken(
            classID: classID, token: token, grace: grace, now: Date(), audit: .commandLine("rotate-token", "class"))
        return token.secret
    }
}
