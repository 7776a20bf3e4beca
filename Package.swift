// swift-tools-version:6.0
//
// DeviceHub: one package, layered modules. Dependency direction is one-way:
// C shims → HubIO → HubHTTP (pure codecs) → HubServer (wiring) → executables.
import PackageDescription

/// Every C library enters through a system-library target found by pkg-config; the apt
/// provider tells SwiftPM (and a person reading a build failure) which package to install.
func systemLibrary(_ name: String, pkg: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Sources/\(name)", pkgConfig: pkg, providers: [.apt([apt])])
}

/// Our own hot-path modules: exclusivity is proven statically where it matters (no
/// overlapping `inout` access by design), and the dynamic checks cost ~2% of a request.
/// Cross-module optimization lets the server inline the codec's small accessors.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "DeviceHub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "devicehub", targets: ["devicehub"]),
        .executable(name: "ws-echo", targets: ["ws-echo"]),
        .executable(name: "hubctl", targets: ["hubctl"]),
        .executable(name: "jwt-bench", targets: ["jwt-bench"]),
        .library(name: "DeviceHub", targets: ["HubServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
    ],
    targets: [
        // C entry points.
        .target(name: "CHubShims", path: "Sources/CHubShims", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto"), .linkedLibrary("z")]),
        systemLibrary("COpenSSL", pkg: "openssl", apt: "libssl-dev"),
        systemLibrary("CZlib", pkg: "zlib", apt: "zlib1g-dev"),
        systemLibrary("CHiredis", pkg: "hiredis", apt: "libhiredis-dev"),
        systemLibrary("CLibPQ", pkg: "libpq", apt: "libpq-dev"),
        systemLibrary("CSQLite", pkg: "sqlite3", apt: "libsqlite3-dev"),

        // Observability: structured logs and lock-free metrics, used by every layer above I/O.
        .target(name: "HubTelemetry", dependencies: [
            .product(name: "Logging", package: "swift-log"), .product(name: "Atomics", package: "swift-atomics"),
        ], swiftSettings: hotPath),
        // Event loop, sockets, timers, TLS engine. Syscalls live here and nowhere else.
        .target(name: "HubIO", dependencies: ["CHubShims", "COpenSSL", "HubTelemetry"], swiftSettings: hotPath),
        // Pure HTTP/1.1 codec and router: no sockets, testable byte by byte.
        .target(name: "HubHTTP", dependencies: [], swiftSettings: hotPath),
        // Pure RFC 6455 / RFC 7692 codec: frames, UTF-8, close codes, handshake, deflate.
        .target(name: "HubWebSocket", dependencies: ["CHubShims", "CZlib", "COpenSSL"], swiftSettings: hotPath),
        // Small HTTP/1.1 client on our loops (TLS via HubIO): the JWKS fetch and hubctl.
        .target(name: "HubHTTPClient", dependencies: ["HubIO", "HubHTTP"], swiftSettings: [.swiftLanguageMode(.v6)]),
        // WebSocket connections on channels (both roles), fan-out, client connect.
        .target(name: "HubWebSocketIO", dependencies: ["HubIO", "HubWebSocket", "HubHTTP"], swiftSettings: hotPath),
        // Redis client on our event loops, over hiredis's async API.
        .target(name: "HubRedis", dependencies: [
            "CHiredis", "COpenSSL", "HubIO", "HubTelemetry", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath),
        // Stores: PostgreSQL client (libpq non-blocking on our loops), SQLite, migrations.
        .target(name: "HubPostgres", dependencies: [
            "CLibPQ", "HubIO", "HubTelemetry", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath),
        .target(name: "HubSQLite", dependencies: ["CSQLite"]),
        .target(name: "HubMigrations", dependencies: ["HubPostgres", "HubSQLite"], plugins: ["MigrationsPlugin"]),
        .plugin(name: "MigrationsPlugin", capability: .buildTool(), path: "Plugins/MigrationsPlugin"),
        // The store interfaces the domain uses (key/value, counters, pub/sub, streams, lease
        // queue, relational records) with their embedded and Redis/PostgreSQL implementations.
        .target(name: "HubStore", dependencies: [
            "HubRedis", "HubPostgres", "HubSQLite", "HubMigrations", "HubIO", "HubTelemetry",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Identity (Swift 6 mode): Supabase JWT verification (JWT/: jwt-kit does the JOSE crypto
        // and JWK parsing; verification itself is synchronous on the caller's loop,
        // docs/auth-jwt.md), credentials (activation codes, device secrets and tokens, API
        // keys), rate limits, and the org/device/key services over the store interfaces.
        .target(name: "HubAuth", dependencies: [
            "HubStore", "HubHTTP", "COpenSSL",
            .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath + [.swiftLanguageMode(.v6)]),
        // The command queue with human approval (Swift 6 mode): diagnostic sessions, commands,
        // leases, the reaper and the rebuild of the hot queue from the records (docs/queue.md).
        .target(name: "HubCommands", dependencies: [
            "HubStore", "HubAuth", "HubHTTP", "HubIO", "HubTelemetry", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.swiftLanguageMode(.v6)]),
        // Endpoints, configuration, connection shell, lifecycle.
        .target(name: "HubServer", dependencies: [
            "HubIO", "HubHTTP", "HubTelemetry", "HubWebSocket", "HubWebSocketIO",
            "HubRedis", "HubPostgres", "HubSQLite", "HubMigrations", "HubStore", "HubAuth", "HubHTTPClient", "HubCommands",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath, plugins: ["BuildInfoPlugin"]),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool(), path: "Plugins/BuildInfoPlugin"),
        .executableTarget(name: "devicehub", dependencies: [
            "HubServer", "HubIO", "HubTelemetry", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "ws-echo", dependencies: ["HubServer", "HubIO", "HubWebSocket", "HubWebSocketIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            path: "tools/ws-echo", swiftSettings: hotPath),

        // What the benchmark clients share (logs, /proc readings, percentiles, JSON summary, setup
        // through the public API, device tokens and socket ramps).
        .target(name: "BenchSupport", dependencies: ["HubIO", "HubTelemetry", "HubHTTP", "HubHTTPClient", "HubWebSocket", "HubWebSocketIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "tools/bench-support"),
        .executableTarget(name: "ws-load", dependencies: ["BenchSupport", "HubIO", "HubWebSocket", "HubWebSocketIO", "HubTelemetry",
            .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "tools/ws-load", swiftSettings: hotPath),
        .executableTarget(name: "route-bench", dependencies: ["HubServer", "HubRedis", "HubIO", "HubHTTP", "HubTelemetry",
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            path: "tools/route-bench", swiftSettings: hotPath),
        .executableTarget(name: "redis-bench", dependencies: ["HubRedis", "HubIO"], path: "tools/redis-bench", swiftSettings: hotPath),

        .executableTarget(name: "hubctl", dependencies: [
            "HubMigrations", "HubPostgres", "HubSQLite", "HubIO", "HubHTTP", "HubHTTPClient", "HubAuth",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "tools/hubctl"),
        .executableTarget(name: "jwt-bench", dependencies: ["HubAuth", .product(name: "JWTKit", package: "jwt-kit")],
            path: "tools/jwt-bench", swiftSettings: hotPath + [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "auth-bench", dependencies: ["BenchSupport", "HubIO", "HubTelemetry", "HubHTTP", "HubHTTPClient", "HubWebSocket", "HubWebSocketIO", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "tools/auth-bench", swiftSettings: hotPath),
        .executableTarget(name: "queue-bench", dependencies: ["BenchSupport", "HubIO", "HubTelemetry", "HubHTTP", "HubHTTPClient", "HubWebSocket", "HubWebSocketIO", "CSQLite", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "tools/queue-bench", swiftSettings: hotPath),
        // Rooms: device events fanned out to portals on /ws/customer (tools/bench/room-bench.sh).
        .executableTarget(name: "room-bench", dependencies: ["BenchSupport", "HubIO", "HubTelemetry", "HubHTTP", "HubHTTPClient", "HubWebSocket", "HubWebSocketIO", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "tools/room-bench", swiftSettings: hotPath),
        .executableTarget(name: "pg-bench", dependencies: ["HubPostgres", "HubIO", "HubTelemetry"], path: "tools/pg-bench"),

        // Real redis-server and PostgreSQL for the integration tests (not a test target itself,
        // so that several test targets share it).
        .target(name: "HubTestSupport", dependencies: ["HubRedis", "HubIO", "HubPostgres", "HubSQLite", "HubMigrations"], path: "Tests/HubTestSupport"),
        .testTarget(name: "HubWebSocketTests", dependencies: ["HubWebSocket"]),
        // One conformance suite, run against the embedded store and against Redis + PostgreSQL.
        .testTarget(name: "HubStoreTests", dependencies: ["HubStore", "HubTestSupport", "HubRedis", "HubPostgres", "HubSQLite", "HubMigrations", "HubIO"]),
        .testTarget(name: "HubPostgresTests", dependencies: ["HubPostgres", "HubMigrations", "HubIO", "HubTelemetry", "HubTestSupport"]),
        .testTarget(name: "HubSQLiteTests", dependencies: ["HubSQLite", "HubMigrations"]),
        .testTarget(name: "HubRedisTests", dependencies: ["HubRedis", "HubIO", "HubTelemetry", "HubTestSupport"]),
        .testTarget(name: "HubHTTPTests", dependencies: ["HubHTTP"]),
        .testTarget(name: "HubHTTPClientTests", dependencies: ["HubHTTPClient", "HubHTTP", "HubIO", "HubTestSupport"]),
        // Runs the built hubctl binary against a fake admin server (Python), and checks its
        // dev tokens with PyJWT.
        .testTarget(name: "HubCtlTests", dependencies: ["HubTestSupport"]),
        .testTarget(name: "HubIOTests", dependencies: ["HubIO"]),
        .testTarget(name: "HubTelemetryTests", dependencies: ["HubTelemetry", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "HubAuthTests", dependencies: [
            "HubAuth", "HubStore", "HubHTTP", "HubTestSupport", "HubRedis", "HubPostgres", "HubSQLite", "HubMigrations", "HubIO",
            .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(name: "HubServerTests", dependencies: ["HubServer", "HubIO", "HubHTTP", "HubStore", "HubAuth", "HubTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
