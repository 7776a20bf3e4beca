// swift-tools-version:5.9
//
// The SwiftNIO peer for tools/bench/ws-bench.sh: a WebSocket echo (+ /pub → / broadcast)
// server adapted from swift-nio's NIOWebSocketServer example. A separate package so that
// DeviceHub itself never links NIO. Build: swift build -c release --package-path tools/bench/nio-ws-echo
//   --scratch-path .build-bench/nio
import PackageDescription

let package = Package(
    name: "nio-ws-echo",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(name: "nio-ws-echo", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
    ]
)
