import Foundation
import PulseboardDatabase
import PulseboardHTTP
import PulseboardKernel

/// A student's submission to an assignment: every uploaded version, and the grade. The
/// submission and its versions are decoded by column name.
package struct SubmissionRecord: Sendable, Equatable, Decodable {
    struct Version: Sendable, Equatable, Decodable {
        var version: Int64
        var contentKey: String
        var size: Int64
        var sha256: String
        var submittedAtMs: Int64
        var late: Bool

        enum CodingKeys: String, CodingKey {
            case version, contentKey, size, sha256, late
            case submittedAtMs = "submittedAt"
        }
    }

    var id: Int64
    var assignmentID: Int64
    var classID: Int64
    var studentID: Int64
    var studentEmail: String
    var grade: Double?
    var feedback: String?
    var gradedVersion: Int64?
    var gradedAtMs: Int64?
    var createdAtMs: Int64
    var updatedAtMs: Int64
    /// Oldest first; never empty once read (`Submissions.withVersions`).
    var versions: [Version] = []

    var latest: Version { versions[versions.count - 1] }

    enum CodingKeys: String, CodingKey {
        case id, assignmentID, classID, studentID, studentEmail, grade, feedback, gradedVersion
        case gradedAtMs = "gradedAt", createdAtMs = "createdAt", updatedAtMs = "updatedAt"
    }
}

/// Submissions in storage, through portable statements; notebook contents in `files`.
package struct Submissions {
    let store: any Database
    let files: NotebookFiles

    private static let columns = """
        s.id, s.assignment_id, a.class_id, s.student_id, u.email AS student_email, s.grade, s.feedback, s.graded_version, s.graded_at, s.created_at, s.updated_at
        """
    private static let from = "submissions s JOIN assignments a ON a.id = s.assignment_id JOIN users u ON u.id = s.student_id"

    package init(store: any Database, files: NotebookFiles) {
        self.store = store
        self.files = files
    }

    /// Stores a new version of the student's submission (the first one creates the submission),
    /// late when after the due date; `audit` is written in the same transaction.
    func submit(_ notebook: Data, to assignment: AssignmentRecord, studentID: Int64, now: Date, audit: AuditNote?) async throws -> SubmissionRecord {
        let nowMs = now.millisecondsSince1970
        let late = assignment.dueAtMs.map { nowMs > $0 } ?? false
        let stashed = try files.stash(notebook)
        let submission = SQLValue.returned(byStatement: 0)
        let statements = [
            SQLStatement(
                """
                INSERT INTO submissions (assignment_id, student_id, created_at, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (assignment_id, student_id) DO UPDATE SET updated_at = excluded.updated_at RETURNING id
                """,
                .integer(assignment.id), .integer(studentID), .integer(nowMs), .integer(nowMs)),
            SQLStatement(
                """
                INSERT INTO submission_versions (submission_id, version, content_key, content, size, sha256, submitted_at, late)
                SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ?, ?, ?, ? FROM submission_versions WHERE submission_id = ?
                """,
                submission, .text(stashed.key), stashed.inline.map(SQLValue.blob) ?? .null, .integer(Int64(notebook.count)), .text(stashed.sha256),
                .integer(nowMs), SQLValue(late), submission),
        ]
        do {
            try await store.transaction(statements + [audit?.statement(id: submission)].compactMap { $0 })
        } catch {
            files.discard(keys: [stashed.key])
            throw error
        }
        guard let record = try await list(Filter(assignmentIDs: [assignment.id], studentID: studentID)).first else {
            throw StoreError.unavailable("the new submission was not returned")
        }
        return record
    }

    struct Filter {
        /// Nil: every assignment.
        var assignmentIDs: [Int64]?
        var studentID: Int64?
        var skip = 0
        var limit = Int(Int32.max)
    }

    func find(id: Int64) async throws -> SubmissionRecord? {
        let rows = try await store.select(SQLStatement("SELECT \(Self.columns) FROM \(Self.from) WHERE s.id = ?", .integer(id)), as: SubmissionRecord.self)
        return try await withVersions(rows).first
    }

    /// Submissions matching the filter, newest change first.
    func list(_ filter: Filter) async throws -> [SubmissionRecord] {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let ids = filter.assignmentIDs {
            guard !ids.isEmpty else { return [] }
            conditions.append("s.assignment_id IN (" + Array(repeating: "?", count: ids.count).joined(separator: ", ") + ")")
            arguments += ids.map(SQLValue.integer)
        }
        if let student = filter.studentID {
            conditions.append("s.student_id = ?")
            arguments.append(.integer(student))
        }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let rows = try await store.select(
            SQLStatement(
                "SELECT \(Self.columns) FROM \(Self.from)\(whereClause) ORDER BY s.updated_at DESC, s.id DESC LIMIT ? OFFSET ?",
                arguments: arguments + [.integer(Int64(filter.limit)), .integer(Int64(filter.skip))]),
            as: SubmissionRecord.self)
        return try await withVersions(rows)
    }

    /// Sets (or clears, with nil) the grade and feedback; the graded version is the latest.
    func grade(_ submission: SubmissionRecord, grade: Double?, feedback: String?, graderID: Int64, now: Date, audit: AuditNote?) async throws {
        let nowMs = now.millisecondsSince1970
        let graded = grade != nil || feedback != nil
        var statements = [
            SQLStatement(
                """
                UPDATE submissions SET grade = ?, feedback = ?, graded_by = ?, graded_at = ?, graded_version = ?, updated_at = ? WHERE id = ?
                """,
                SQLValue(grade), SQLValue(feedback), graded ? .integer(graderID) : .null, graded ? .integer(nowMs) : .null,
                graded ? .integer(submission.latest.version) : .null, .integer(nowMs), .integer(submission.id))
        ]
        if let audit { statements.append(audit.statement(id: .integer(submission.id))) }
        try await store.transaction(statements)
    }

    func delete(_ submission: SubmissionRecord, audit: AuditNote?) async throws {
        try await store.transaction(
            [SQLStatement("DELETE FROM submissions WHERE id = ?", .integer(submission.id))]
                + [audit?.statement(id: .integer(submission.id))].compactMap { $0 })
        files.discard(keys: submission.versions.map(\.contentKey))
    }

    /// The notebook of one version.
    func content(of version: SubmissionRecord.Version, submissionID: Int64) async throws -> Data? {
        let stored = try await store.selectValue(
            SQLStatement(
                "SELECT content FROM submission_versions WHERE submission_id = ? AND version = ?", .integer(submissionID), .integer(version.version)))
        guard let stored else { return nil }
        return try files.content(key: version.contentKey, inline: stored.data)
    }

    /// Removes directory files that no version names any more (see `NotebookFiles.sweep`).
    package func sweepFiles(now: Date) async throws {
        guard case .directory = files else { return }
        let keys = try await store.select(SQLStatement("SELECT content_key FROM submission_versions"), as: StoredKey.self)
        files.sweep(referenced: Set(keys.map(\.contentKey)), before: now.addingTimeInterval(-3600))
    }

    private struct StoredKey: Decodable {
        var contentKey: String
    }

    private struct VersionRow: Decodable {
        var submissionID: Int64
        var version: SubmissionRecord.Version

        init(from decoder: any Decoder) throws {
            submissionID = try decoder.container(keyedBy: CodingKeys.self).decode(Int64.self, forKey: .submissionID)
            version = try SubmissionRecord.Version(from: decoder)
        }

        enum CodingKeys: String, CodingKey { case submissionID }
    }

    private func withVersions(_ submissions: [SubmissionRecord]) async throws -> [SubmissionRecord] {
        var records = submissions
        guard !records.isEmpty else { return [] }
        let ids = records.map(\.id)
        let versionRows = try await store.select(
            SQLStatement(
                """
                SELECT submission_id, version, content_key, size, sha256, submitted_at, late FROM submission_versions
                WHERE submission_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", "))) ORDER BY submission_id, version
                """,
                arguments: ids.map(SQLValue.integer)),
            as: VersionRow.self)
        let versions = Dictionary(grouping: versionRows, by: \.submissionID).mapValues { $0.map(\.version) }
        for index in records.indices { records[index].versions = versions[records[index].id] ?? [] }
        // Every submission has a version; one deleted between the two queries has none left.
        return records.filter { !$0.versions.isEmpty }
    }
}
