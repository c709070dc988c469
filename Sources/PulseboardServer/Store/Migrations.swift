/// The numbered schema migrations, shared by every engine. Each engine records the versions it has
/// applied in a `schema_version` table. Column types are spelled so that SQLite and PostgreSQL
/// read them alike (BIGINT milliseconds for every time, DOUBLE PRECISION for values).
struct Migration: Sendable {
    let version: Int
    let name: String
    let statements: [String]
}

enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "users, sessions and ingest tokens",
            statements: [
                """
                CREATE TABLE users (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    ]
}
