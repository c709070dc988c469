import PulseboardDatabase
import PulseboardMetrics

/// The schema of every feature, numbered in the order it was added (applied by `Database.migrate`).
package enum Migrations {
    package static let all: [Migration] = [
        Migration(
            version: 1,
            name: "users, sessions and ingest tokens",
            statements: [
                """
                CREATE TABLE users (
                    id {{id}},
                    email TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    role TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE sessions (
                    token_hash TEXT PRIMARY KEY,
                    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sessions_user ON sessions(user_id)",
                """
                CREATE TABLE ingest_tokens (
                    id {{id}},
                    name TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    prefix TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
            ]
        ),
        Migration(
            version: 2,
            name: "metric series, points, rollups and idempotency keys",
            statements: [
                """
                CREATE TABLE series (
                    id {{id}},
                    name TEXT NOT NULL,
                    tags TEXT NOT NULL,
                    last_ts BIGINT,
                    last_value DOUBLE PRECISION,
                    UNIQUE (name, tags)
                )
                """,
                """
                CREATE TABLE points (
                    series_id BIGINT NOT NULL,
                    ts BIGINT NOT NULL,
                    value DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX points_series_ts ON points(series_id, ts)",
                """
                CREATE TABLE rollup_1m (
                    series_id BIGINT NOT NULL,
                    bucket BIGINT NOT NULL,
                    count BIGINT NOT NULL,
                    sum DOUBLE PRECISION NOT NULL,
                    min DOUBLE PRECISION NOT NULL,
                    max DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (series_id, bucket)
                )
                """,
                """
                CREATE TABLE rollup_1h (
                    series_id BIGINT NOT NULL,
                    bucket BIGINT NOT NULL,
                    count BIGINT NOT NULL,
                    sum DOUBLE PRECISION NOT NULL,
                    min DOUBLE PRECISION NOT NULL,
                    max DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (series_id, bucket)
                )
                """,
                """
                CREATE TABLE idempotency_keys (
                    key TEXT PRIMARY KEY,
                    created_at BIGINT NOT NULL,
                    points BIGINT NOT NULL
                )
                """,
                "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at)",
            ]
        ),
        Migration(
            version: 3,
            name: "shared secrets and the cross-instance live log",
            statements: [
                "CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
                """
                CREATE TABLE live_log (
                    instance TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    points TEXT NOT NULL,
                    PRIMARY KEY (instance, seq)
                )
                """,
                "CREATE INDEX live_log_created ON live_log(created_at)",
            ]
        ),
        Migration(
            version: 4,
            name: "classes and the learning-progress picture",
            statements: [
                """
                CREATE TABLE classes (
                    id {{id}},
                    name TEXT NOT NULL,
                    code TEXT NOT NULL UNIQUE,
                    description TEXT NOT NULL,
                    owner_id BIGINT NOT NULL REFERENCES users(id),
                    token_hash TEXT NOT NULL UNIQUE,
                    token_prefix TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                // The raw event stream, as received (with eventId and eventTime filled in).
                """
                CREATE TABLE events (
                    id {{id}},
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    event_id TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    event_time BIGINT NOT NULL,
                    received_at BIGINT NOT NULL,
                    email TEXT,
                    payload TEXT NOT NULL,
                    processed_at BIGINT,
                    UNIQUE (class_id, event_id)
                )
                """,
                "CREATE INDEX events_class_time ON events(class_id, event_time)",
                "CREATE INDEX events_student_time ON events(class_id, email, event_time)",
                "CREATE INDEX events_unprocessed ON events(id) WHERE processed_at IS NULL",
                """
                CREATE TABLE students (
                    id {{id}},
                    email TEXT NOT NULL UNIQUE,
                    name TEXT,
                    team TEXT,
                    first_seen BIGINT NOT NULL,
                    last_seen BIGINT NOT NULL
                )
                """,
                // A student's current place in a class: what the live view shows.
                """
                CREATE TABLE class_students (
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
                    joined_at BIGINT NOT NULL,
                    last_event_at BIGINT,
                    last_event_type TEXT,
                    notebook_path TEXT,
                    cell_index BIGINT,
                    cell_id TEXT,
                    cells_executed BIGINT NOT NULL DEFAULT 0,
                    last_execution_failed BIGINT NOT NULL DEFAULT 0,
                    PRIMARY KEY (class_id, student_id)
                )
                """,
                """
                CREATE TABLE student_sessions (
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    session_id TEXT NOT NULL,
                    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
                    started_at BIGINT NOT NULL,
                    last_seen BIGINT NOT NULL,
                    ended_at BIGINT,
                    PRIMARY KEY (class_id, session_id)
                )
                """,
                """
                CREATE TABLE notebooks (
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    path TEXT NOT NULL,
                    first_seen BIGINT NOT NULL,
                    PRIMARY KEY (class_id, path)
                )
                """,
                """
                CREATE TABLE cell_executions (
                    id {{id}},
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
                    event_id TEXT NOT NULL,
                    notebook_path TEXT NOT NULL,
                    cell_id TEXT,
                    cell_index BIGINT,
                    execution_count BIGINT,
                    duration_ms DOUBLE PRECISION,
                    has_error BIGINT NOT NULL,
                    error_message TEXT,
                    code TEXT,
                    executed_at BIGINT NOT NULL,
                    UNIQUE (class_id, event_id)
                )
                """,
                // Recent errors per student are counted on every live update: errors only, by time.
                "CREATE INDEX cell_executions_student_errors ON cell_executions(class_id, student_id, has_error, executed_at)",
                "CREATE INDEX cell_executions_notebook ON cell_executions(class_id, notebook_path, cell_index)",
                """
                CREATE TABLE notebook_accesses (
                    id {{id}},
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
                    event_id TEXT NOT NULL,
                    notebook_path TEXT NOT NULL,
                    action TEXT NOT NULL,
                    at BIGINT NOT NULL,
                    UNIQUE (class_id, event_id)
                )
                """,
                """
                CREATE TABLE help_requests (
                    id {{id}},
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
                    notebook_path TEXT,
                    cell_index BIGINT,
                    opened_at BIGINT NOT NULL,
                    closed_at BIGINT,
                    closed_by TEXT
                )
                """,
                "CREATE INDEX help_requests_open ON help_requests(class_id, student_id) WHERE closed_at IS NULL",
            ]
        ),
        Migration(
            version: 5,
            name: "assignments",
            statements: [
                """
                CREATE TABLE assignments (
                    id {{id}},
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    title TEXT NOT NULL,
                    description TEXT NOT NULL,
                    notebook_path TEXT NOT NULL,
                    due_at BIGINT,
                    created_by BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX assignments_class ON assignments(class_id, due_at)",
            ]
        ),
        Migration(
            version: 6,
            name: "audit trail",
            statements: [
                """
                CREATE TABLE audit_log (
                    id {{id}},
                    at BIGINT NOT NULL,
                    actor_id BIGINT NOT NULL,
                    actor_email TEXT NOT NULL,
                    action TEXT NOT NULL,
                    entity TEXT NOT NULL,
                    entity_id TEXT NOT NULL,
                    request_id TEXT NOT NULL,
                    details TEXT NOT NULL
                )
                """,
                "CREATE INDEX audit_log_at ON audit_log(at)",
            ]
        ),
        Migration(
            version: 7,
            name: "submissions",
            statements: [
                // One row per student and assignment: the grade lives here, the versions below.
                """
                CREATE TABLE submissions (
                    id {{id}},
                    assignment_id BIGINT NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
                    student_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    grade DOUBLE PRECISION,
                    feedback TEXT,
                    graded_by BIGINT,
                    graded_at BIGINT,
                    graded_version BIGINT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    UNIQUE (assignment_id, student_id)
                )
                """,
                "CREATE INDEX submissions_student ON submissions(student_id)",
                // Every upload is kept. `content` holds the notebook when the file store is the
                // database; with a directory it is NULL and the file is named by `content_key`.
                """
                CREATE TABLE submission_versions (
                    submission_id BIGINT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
                    version BIGINT NOT NULL,
                    content_key TEXT NOT NULL UNIQUE,
                    content {{blob}},
                    size BIGINT NOT NULL,
                    sha256 TEXT NOT NULL,
                    submitted_at BIGINT NOT NULL,
                    late BIGINT NOT NULL,
                    PRIMARY KEY (submission_id, version)
                )
                """,
            ]
        ),
        Migration(
            version: 8,
            name: "co-instructors",
            statements: [
                """
                CREATE TABLE class_instructors (
                    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    added_at BIGINT NOT NULL,
                    PRIMARY KEY (class_id, user_id)
                )
                """,
                "CREATE INDEX class_instructors_user ON class_instructors(user_id)",
            ]
        ),
        Migration(
            version: 9,
            name: "token generations and session families",
            statements: [
                "ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0",
                // Each existing session is a family of its own; used refresh tokens stay until
                // they expire, so that replaying one is recognised.
                "ALTER TABLE sessions ADD COLUMN family TEXT",
                "UPDATE sessions SET family = token_hash",
                "ALTER TABLE sessions ADD COLUMN used_at BIGINT",
                "CREATE INDEX sessions_family ON sessions(family)",
            ]
        ),
        Migration(
            version: 10,
            name: "students who join by sending events",
            statements: [
                // A class token is known to every student of the class, so an event's email is a
                // claim: a class may hold those who join that way until an instructor accepts them.
                "ALTER TABLE classes ADD COLUMN hold_new_students BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE class_students ADD COLUMN joined_by_events BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE class_students ADD COLUMN held BIGINT NOT NULL DEFAULT 0",
            ]
        ),
        Migration(
            version: 11,
            name: "points in compressed chunks",
            statements: [
                // A chunk is many points of one series in ChunkCodec's format.
                """
                CREATE TABLE chunks (
                    id {{id}},
                    series_id BIGINT NOT NULL,
                    start_ts BIGINT NOT NULL,
                    end_ts BIGINT NOT NULL,
                    count BIGINT NOT NULL,
                    data {{blob}} NOT NULL
                )
                """,
                "CREATE INDEX chunks_series_end ON chunks(series_id, end_ts)",
                // The live log keeps each commit's chunks too (`LoggedCommit`), not JSON; its
                // entries live for minutes, so none is converted.
                "DROP TABLE live_log",
                """
                CREATE TABLE live_log (
                    instance TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    points {{blob}} NOT NULL,
                    PRIMARY KEY (instance, seq)
                )
                """,
                "CREATE INDEX live_log_created ON live_log(created_at)",
            ]
        ),
        Migration(
            version: 12,
            name: "the points table converted to chunks",
            dataStep: PointsTableConversion.run,
            statements: ["DROP TABLE points"]
        ),
        Migration(
            version: 13,
            name: "API tokens of users",
            statements: [
                """
                CREATE TABLE api_tokens (
                    id {{id}},
                    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    prefix TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX api_tokens_user ON api_tokens(user_id)",
            ]
        ),
        Migration(
            version: 14,
            name: "class ingest tokens kept so that instructors can read them again",
            // Only the hash was kept before: those classes show their token after one rotation.
            statements: ["ALTER TABLE classes ADD COLUMN ingest_token TEXT"]
        ),
        Migration(
            version: 15,
            name: "help sessions: who helped, the student's latest repeat, the end of the session",
            statements: [
                "ALTER TABLE help_requests ADD COLUMN helper_id BIGINT",
                "ALTER TABLE help_requests ADD COLUMN last_help_at BIGINT",
                "ALTER TABLE help_requests ADD COLUMN released_at BIGINT",
            ]
        ),
        Migration(
            version: 16,
            name: "a replaced class token keeps working until its grace period ends",
            statements: [
                "ALTER TABLE classes ADD COLUMN previous_token_hash TEXT",
                "ALTER TABLE classes ADD COLUMN previous_token_until BIGINT",
            ]
        ),
        Migration(
            version: 17,
            name: "the request log and the task progress log (seed 003's api_logs and task_progress_logs), joined by trace id",
            statements: [
                """
                CREATE TABLE api_logs (
                    id {{id}},
                    trace_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    method TEXT NOT NULL,
                    route TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    request_header TEXT NOT NULL,
                    request_body TEXT,
                    response_status INTEGER NOT NULL,
                    response_header TEXT NOT NULL,
                    response_body TEXT,
                    duration_ms DOUBLE PRECISION NOT NULL,
                    ip_address TEXT NOT NULL,
                    user_id BIGINT
                )
                """,
                "CREATE INDEX api_logs_trace_id ON api_logs(trace_id)",
                "CREATE INDEX api_logs_created_at ON api_logs(created_at)",
                """
                CREATE TABLE task_progress_logs (
                    id {{id}},
                    trace_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    task_name TEXT NOT NULL,
                    step_name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    execution_order INTEGER NOT NULL,
                    input_data TEXT,
                    output_data TEXT,
                    error_message TEXT,
                    stack_trace TEXT
                )
                """,
                "CREATE INDEX task_progress_logs_trace_id ON task_progress_logs(trace_id)",
                "CREATE INDEX task_progress_logs_created_at ON task_progress_logs(created_at)",
                // The request that brought an event, for the steps of applying it.
                "ALTER TABLE events ADD COLUMN trace_id TEXT",
            ]
        ),
        Migration(
            version: 18,
            name: "learning events that reached no class (a missing, unknown or expired class token), kept for an instructor to assign",
            statements: [
                """
                CREATE TABLE stray_events (
                    id {{id}},
                    received_at BIGINT NOT NULL,
                    client_address TEXT NOT NULL,
                    token_label TEXT NOT NULL,
                    class_hint BIGINT,
                    email TEXT,
                    event_time BIGINT NOT NULL,
                    payload TEXT NOT NULL
                )
                """,
                "CREATE INDEX stray_events_address ON stray_events(client_address, id)",
                "CREATE INDEX stray_events_group ON stray_events(token_label, class_hint)",
            ]
        ),
        Migration(
            version: 19,
            name: "a session's cells: the session and the cell type of each cell execution, and the session of each raw event",
            statements: [
                "ALTER TABLE cell_executions ADD COLUMN session_id TEXT",
                "ALTER TABLE cell_executions ADD COLUMN cell_type TEXT",
                "CREATE INDEX cell_executions_session ON cell_executions(class_id, student_id, session_id)",
                "ALTER TABLE events ADD COLUMN session_id TEXT",
                "CREATE INDEX events_session ON events(class_id, session_id)",
            ]
        ),
        Migration(
            version: 20,
            name: "the messages instances send each other (notices, card changes, progress, access changes), read in order after every reconnect",
            statements: [
                """
                CREATE TABLE relay_log (
                    instance TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    kind TEXT NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (instance, seq)
                )
                """,
                "CREATE INDEX relay_log_created ON relay_log(created_at)",
            ]
        ),
        Migration(
            version: 21,
            name: "the events not yet applied to the class picture are kept apart, so applying one deletes a small row instead of rewriting the event",
            statements: [
                """
                CREATE TABLE events_unapplied (
                    class_id BIGINT NOT NULL,
                    event_id TEXT NOT NULL,
                    PRIMARY KEY (class_id, event_id)
                )
                """,
                "INSERT INTO events_unapplied (class_id, event_id) SELECT class_id, event_id FROM events WHERE processed_at IS NULL",
                "DROP INDEX events_unprocessed",
                "ALTER TABLE events DROP COLUMN processed_at",
            ]
        ),
        Migration(
            version: 22,
            name: "the point log: commits of the SQLite engine, folded into chunks, rollups and the series' last values every second",
            statements: [
                // Each row is one commit's points (`PointLog`); PostgreSQL writes its chunks at
                // once and never uses the table.
                """
                CREATE TABLE point_log (
                    id {{id}},
                    count BIGINT NOT NULL,
                    data {{blob}} NOT NULL
                )
                """
            ]
        ),
    ]
}
