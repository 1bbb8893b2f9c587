// swift-tools-version: 6.1
import PackageDescription

/// The numeric kernels are written with SIMD8 vectors and fused multiply-add. On x86-64 they are
/// compiled for Haswell-class CPUs (AVX2 + FMA, every x86-64 server CPU since 2013/2017);
/// `RNND_TARGET_CPU=x86-64 swift build` builds a portable binary without FMA instead.
let targetCPU: String? = {
    #if arch(x86_64)
    return Context.environment["RNND_TARGET_CPU"] ?? "haswell"
    #else
    return Context.environment["RNND_TARGET_CPU"]
    #endif
}()

let codegen: [SwiftSetting] = {
    guard let cpu = targetCPU else { return [] }
    var flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", cpu])]
    if cpu == "x86-64" { flags.append(.define("RNND_NO_FMA")) }
    return flags
}()

/// The same strictness for every target.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "rnnd",
    products: [
        .executable(name: "rnnd", targets: ["rnnd"]),
        .library(name: "RNNCore", targets: ["RNNCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The checkpoint store: SQLite (transactions, WAL) through a maintained Swift API.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // Metrics: the Prometheus text exposition of `--metrics-listen`, a registry per daemon
        // (its collectors are swift-metrics handlers; swift-metrics comes with it).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The HTTP server of /metrics and /healthz: small, no SwiftNIO, epoll on Linux.
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(
            name: "ZeroMQ",
            dependencies: ["CZeroMQ"],
            swiftSettings: strict + codegen
        ),
        .target(
            name: "RNNCore",
            dependencies: [.product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: strict + codegen
        ),
        .target(
            name: "RNNDaemon",
            dependencies: [
                "RNNCore",
                "ZeroMQ",
                .product(name: "RealModule", package: "swift-numerics"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ],
            swiftSettings: strict + codegen
        ),
        .executableTarget(
            name: "rnnd",
            dependencies: [
                "RNNCore",
                "RNNDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict + codegen
        ),
        .executableTarget(
            name: "rnnd-e2e",
            dependencies: [
                "ZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict + codegen
        ),
        .target(
            name: "TestSupport",
            dependencies: ["RNNCore", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: strict + codegen
        ),
        .testTarget(
            name: "RNNCoreTests",
            dependencies: ["RNNCore", "TestSupport", .product(name: "RealModule", package: "swift-numerics")],
            exclude: ["Fixtures/generate.py", "Fixtures/README.md"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict + codegen
        ),
        .testTarget(
            name: "RNNDaemonTests",
            dependencies: ["RNNDaemon", "ZeroMQ", "rnnd", "TestSupport"],
            // The sample decoder's fuzzing corpus and the inputs its findings came from (scripts/fuzz).
            resources: [.copy("FuzzCorpus")],
            swiftSettings: strict + codegen
        ),
        .testTarget(
            name: "ZeroMQTests",
            dependencies: ["ZeroMQ"],
            swiftSettings: strict + codegen
        ),
    ],
    swiftLanguageModes: [.v6]
)
