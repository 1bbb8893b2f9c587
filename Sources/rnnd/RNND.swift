import ArgumentParser

@main
struct RNND: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnnd",
        abstract: "Learns to forecast live sensor feeds with recurrent networks trained online.",
        subcommands: [Run.self, Proxy.self, Replay.self, Fit.self, Checkpoint.self, Feed.self, Tail.self, Keygen.self, Demo.self, Bench.self]
    )
}
