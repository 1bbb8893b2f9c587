import Foundation
import Testing
import ZeroMQ

/// The transports rnnd supports for its sockets.
enum Transport: String, CaseIterable, Sendable {
    case tcp, ipc
}

func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// A fresh directory for ipc sockets, removed by `body`'s end.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("rnnd-zmq-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try body(directory)
}

/// Binds `server` on `transport` (tcp: 127.0.0.1 on a port the system picks; ipc: a socket file
/// in `directory`) and connects `client` to the address it got.
func link(_ server: borrowing ZMQSocket, _ client: borrowing ZMQSocket, over transport: Transport, in directory: String)
    throws -> String
{
    switch transport {
    case .tcp: try server.bind("tcp://127.0.0.1:*")
    case .ipc: try server.bind("ipc://\(directory)/\(UUID().uuidString.prefix(8)).sock")
    }
    let address = try server.lastEndpoint
    try client.connect(address)
    return address
}

/// Receives with `receive` until it returns frames, sending with `send` before each try, until
/// `timeout` passes: the way past PUB/SUB's slow joiner, whose first messages are dropped until
/// the subscription has reached the publisher.
func untilJoined(timeout: Duration = .seconds(10), send: () throws -> Void, receive: () throws -> [[UInt8]]?) throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        try send()
        if try receive() != nil { return true }
    }
    return false
}
