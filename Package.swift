// swift-tools-version: 6.2
import PackageDescription

// Products used by several targets.
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let nioWebSocket = Target.Dependency.product(name: "NIOWebSocket", package: "swift-nio")
let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")
let postgres = Target.Dependency.product(name: "PostgresNIO", package: "postgres-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let deque = Target.Dependency.product(name: "DequeModule", package: "swift-collections")
let httpTypes = Target.Dependency.product(name: "HTTPTypes", package: "swift-http-types")

let package = Package(
    name: "pulseboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pulseboard", targets: ["pulseboard"]),
        .executable(name: "pulseboard-bench", targets: ["pulseboard-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.36.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV.git", from: "0.10.0"),
        .package(url: "https://github.com/yaslab/CSV.swift.git", from: "2.5.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // Read from the bottom up: each target uses only those listed in its dependencies, so the
        // database and live know no feature, features do not know the app, and nothing knows the
        // command line.

        // Roles and claims, time, JSON values, secrets, the server's own metrics.
        .target(
            name: "PulseboardKernel",
            dependencies: [
                crypto, lifecycle, logging, prometheus,
                // Writing CSV files (CSV.swift quotes per RFC 4180).
                .product(name: "CSV", package: "CSV.swift"),
            ],
            path: "Sources/Kernel"),
        // The engine-neutral database: portable statements, transactions, migrations, notifications.
        .target(name: "PulseboardDatabase", dependencies: ["PulseboardKernel", lifecycle, logging], path: "Sources/Database"),
        .target(name: "PulseboardSQLite", dependencies: ["PulseboardDatabase", "PulseboardKernel", grdb, lifecycle], path: "Sources/SQLite"),
        .target(
            name: "PulseboardPostgres", dependencies: ["PulseboardDatabase", "PulseboardKernel", postgres, nioSSL, lifecycle, logging],
            path: "Sources/Postgres"),
        // Snappy, the compression of Prometheus remote write, from Debian's libsnappy-dev.
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        // PromQL: parsing and evaluating Prometheus's query language over series a source provides.
        .target(name: "PulseboardPromQL", path: "Sources/PromQL"),
        // The request log and the task progress log, joined by trace id.
        .target(name: "PulseboardTracing", dependencies: ["PulseboardDatabase", "PulseboardKernel", lifecycle, logging], path: "Sources/Tracing"),
        // Request context, errors, validation, authentication middleware, CSRF, audit notes.
        .target(
            name: "PulseboardHTTP",
            dependencies: [
                "PulseboardDatabase", "PulseboardKernel", "PulseboardTracing", hummingbird, httpTypes, nioCore, logging,
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            path: "Sources/HTTP"),
        // The hub, WebSocket sessions, channel rules that features register, the relay between instances.
        .target(
            name: "PulseboardLive",
            dependencies: ["PulseboardDatabase", "PulseboardHTTP", "PulseboardKernel", hummingbird, nioCore, nioWebSocket, deque, lifecycle, logging],
            path: "Sources/Live"),
        // Features.
        .target(
            name: "PulseboardAccounts",
            dependencies: [
                "PulseboardDatabase", "PulseboardHTTP", "PulseboardKernel", hummingbird, crypto, nioPosix,
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Sources/Accounts"),
        .target(
            name: "PulseboardMetrics",
            dependencies: [
                "PulseboardDatabase", "PulseboardSQLite", "PulseboardPostgres", "PulseboardHTTP", "PulseboardLive", "PulseboardKernel",
                "PulseboardPromQL", grdb, postgres, hummingbird, lifecycle, logging, "CSnappy",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Sources/Metrics",
            exclude: ["Ingest/RemoteWrite/RemoteWrite.proto"]),
        .target(
            name: "PulseboardCourses",
            dependencies: [
                "PulseboardAccounts", "PulseboardDatabase", "PulseboardHTTP", "PulseboardLive", "PulseboardKernel", "PulseboardTracing", hummingbird,
                // Reading rosters.
                .product(name: "SwiftCSV", package: "SwiftCSV"),
            ],
            path: "Sources/Courses"),
        .target(
            name: "PulseboardClassroom",
            dependencies: [
                "PulseboardAccounts", "PulseboardCourses", "PulseboardDatabase", "PulseboardHTTP", "PulseboardLive", "PulseboardMetrics",
                "PulseboardKernel", "PulseboardPromQL", "PulseboardTracing", hummingbird, lifecycle, logging,
            ],
            path: "Sources/Classroom"),
        .target(
            name: "PulseboardWeb",
            dependencies: [
                "PulseboardAccounts", "PulseboardClassroom", "PulseboardCourses", "PulseboardHTTP", "PulseboardKernel", hummingbird,
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            path: "Sources/Web",
            resources: [.copy("Resources")]),
        // Wires everything into one server: configuration, schema, storage engines, routes, services.
        .target(
            name: "PulseboardApp",
            dependencies: [
                "PulseboardAccounts", "PulseboardDatabase", "PulseboardHTTP", "PulseboardKernel", "PulseboardClassroom", "PulseboardCourses", "PulseboardLive",
                "PulseboardMetrics", "PulseboardPostgres", "PulseboardPromQL", "PulseboardSQLite", "PulseboardTracing", "PulseboardWeb",
                hummingbird, .product(name: "HummingbirdCore", package: "hummingbird"), lifecycle, logging, nioCore, nioPosix, nioWebSocket,
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/App",
            resources: [.copy("Resources")]),
        // The command line: serve, migrate, user, token, class, simulate.
        .executableTarget(
            name: "pulseboard",
            dependencies: [
                "PulseboardApp", "PulseboardAccounts", "PulseboardDatabase", "PulseboardKernel", "PulseboardClassroom", "PulseboardCourses",
                "PulseboardTracing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                nioCore, logging,
            ]
        ),
        // The benchmark: starts a server on a temporary database and loads it over loopback.
        .executableTarget(
            name: "pulseboard-bench",
            dependencies: [
                "PulseboardApp", "PulseboardAccounts", "PulseboardDatabase", "PulseboardKernel", "PulseboardClassroom", "PulseboardCourses",
                "PulseboardMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                lifecycle, nioCore, logging,
            ]
        ),
        .testTarget(
            name: "PulseboardTests",
            dependencies: [
                "PulseboardApp", "PulseboardAccounts", "PulseboardDatabase", "PulseboardHTTP", "PulseboardKernel", "PulseboardClassroom", "PulseboardCourses",
                "PulseboardLive", "PulseboardMetrics", "PulseboardPostgres", "PulseboardPromQL", "PulseboardSQLite", "PulseboardTracing", "PulseboardWeb",
                "pulseboard",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                httpTypes, postgres, nioWebSocket, "CSnappy",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
    ]
)
