// swift-tools-version: 6.1
import PackageDescription

// The targets and what each may import: docs/architecture.md.

/// The numeric kernels are written with SIMD8 vectors and fused multiply-add. A build for a
/// named CPU (`RNND_TARGET_CPU=haswell swift build -c release`: AVX2 and FMA, every x86-64
/// server CPU since 2013/2017) compiles them for it; scripts/ and bench/ set it on an x86-64 CPU
/// that has both (scripts/lib/build-env.sh). Without it the build is portable and carries no
/// unsafe flags, so that `RNNCore` can be a versioned dependency of another package
/// (SwiftPM refuses `unsafeFlags` in those). FMA is used where the CPU is known to have it:
/// a named x86-64 CPU other than `x86-64` itself, and every arm64 CPU.
let targetCPU = Context.environment["RNND_TARGET_CPU"].flatMap { $0.isEmpty ? nil : $0 }

let codegen: [SwiftSetting] = {
    var settings: [SwiftSetting] = []
    if let cpu = targetCPU { settings.append(.unsafeFlags(["-target-cpu", cpu])) }
    #if arch(arm64)
    settings.append(.define("RNND_FMA"))
    #else
    if let cpu = targetCPU, cpu != "x86-64" { settings.append(.define("RNND_FMA")) }
    #endif
    return settings
}()

/// The same strictness for every target.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let numerics = Target.Dependency.product(name: "RealModule", package: "swift-numerics")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

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
        // The numerics: cells, training, the forecaster. No I/O.
        .target(name: "RNNCore", dependencies: [numerics], swiftSettings: strict + codegen),
        // libzmq's header as a module, and the safe Swift wrapper over it.
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: strict + codegen),
        // Dependency-free helpers more than one layer needs: reading a file whole, did-you-mean.
        .target(name: "RNNBasics", swiftSettings: strict),
        // The wire protocol: sample decoder, forecast encoder, stream ids and shards, the
        // per-sample stream policy. No dependencies.
        .target(name: "RNNWire", swiftSettings: strict + codegen),
        // The checkpoint store and its records (SQLite through GRDB).
        .target(
            name: "RNNState",
            dependencies: ["RNNCore", "RNNWire", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict + codegen),
        // The daemon's instruments (counters, histograms, health) and their Prometheus
        // exposition over HTTP.
        .target(
            name: "RNNMetrics",
            dependencies: [
                "RNNCore", "RNNWire", logging,
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ],
            swiftSettings: strict + codegen),
        // CURVE key files and allow-lists, read by the daemon and by its clients.
        .target(name: "RNNKeys", dependencies: ["ZeroMQ"], swiftSettings: strict),
        // `rnnd run` and `rnnd proxy`: threads, configuration, checkpoints, supervision, systemd.
        .target(
            name: "RNNDaemon",
            dependencies: [
                "RNNCore", "RNNWire", "RNNState", "RNNMetrics", "RNNKeys", "RNNBasics", "ZeroMQ", numerics, logging,
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict + codegen),
        // The offline tools and clients: CSV, replay, fit, feed, tail, the demo, checkpoint
        // inspection, bench.
        .target(
            name: "RNNTools",
            dependencies: ["RNNCore", "RNNWire", "RNNState", "RNNKeys", "RNNBasics", "ZeroMQ", numerics],
            swiftSettings: strict + codegen),
        // The command line: argument parsing, then a call into the targets above.
        .executableTarget(
            name: "rnnd",
            dependencies: ["RNNCore", "RNNWire", "RNNState", "RNNKeys", "RNNDaemon", "RNNTools", "ZeroMQ", argumentParser, logging],
            swiftSettings: strict + codegen),
        // The end-to-end load generator of bench/.
        .executableTarget(name: "rnnd-e2e", dependencies: ["ZeroMQ", argumentParser], swiftSettings: strict + codegen),
        // The Numenta Anomaly Benchmark: the scorer, and rnnd replay as a detector.
        .executableTarget(name: "rnnd-nab", dependencies: ["RNNTools", argumentParser], swiftSettings: strict + codegen),
        .target(name: "TestSupport", dependencies: ["RNNCore", numerics], swiftSettings: strict + codegen),
        .testTarget(
            name: "RNNCoreTests",
            dependencies: ["RNNCore", "TestSupport", numerics],
            exclude: ["Fixtures/generate.py", "Fixtures/README.md"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict + codegen),
        .testTarget(
            name: "RNNWireTests",
            dependencies: ["RNNWire", "TestSupport"],
            // The sample decoder's fuzzing corpus and the inputs its findings came from (scripts/fuzz).
            resources: [.copy("FuzzCorpus")],
            swiftSettings: strict + codegen),
        .testTarget(name: "RNNToolsTests", dependencies: ["RNNTools", "RNNWire", "RNNCore"], swiftSettings: strict + codegen),
        // The daemon's parts, and the real `rnnd` binary end to end.
        .testTarget(
            name: "RNNDaemonTests",
            dependencies: ["RNNDaemon", "RNNTools", "RNNState", "RNNMetrics", "RNNKeys", "RNNWire", "ZeroMQ", "rnnd", "TestSupport"],
            // Read from the source tree (#filePath): records of an old rnnd and its generator.
            exclude: ["Fixtures"],
            swiftSettings: strict + codegen),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: strict + codegen),
    ],
    swiftLanguageModes: [.v6]
)
