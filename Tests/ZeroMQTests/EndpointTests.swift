import Foundation
import Testing
import ZeroMQ

@Suite(.timeLimit(.minutes(1)))
struct EndpointTests {
    @Test(arguments: [
        ("@tcp://127.0.0.1:5556", ZMQEndpoint.Action.bind, "tcp://127.0.0.1:5556"),
        (">tcp://host:5556", .connect, "tcp://host:5556"),
        ("@tcp://*:5556", .bind, "tcp://*:5556"),
        ("@tcp://127.0.0.1:*", .bind, "tcp://127.0.0.1:*"),
        (">tcp://[::1]:5556", .connect, "tcp://[::1]:5556"),
        ("@ipc:///run/rnnd/in.sock", .bind, "ipc:///run/rnnd/in.sock"),
        (">ipc://relative.sock", .connect, "ipc://relative.sock"),
        ("@inproc://samples", .bind, "inproc://samples"),
    ])
    func parsesBindAndConnect(text: String, action: ZMQEndpoint.Action, address: String) throws {
        let endpoint = try ZMQEndpoint(parsing: text)
        #expect(endpoint.action == action)
        #expect(endpoint.address == address)
        #expect(endpoint.description == text)
        #expect(endpoint == ZMQEndpoint(action, address))
    }

    @Test(arguments: [
        "",
        "tcp://127.0.0.1:5556",
        "@",
        ">",
        "@tcp",
        "@tcp:/127.0.0.1:5556",
        "@://127.0.0.1:5556",
        "@tcp://",
        "@ftp://host:21",
        "@tcp://127.0.0.1",
        "@tcp://127.0.0.1:port",
        "@tcp://127.0.0.1:70000",
        "@tcp://:5556",
        "@ tcp://127.0.0.1:5556",
        "@tcp://127.0.0.1:5556\n",
        "@@tcp://127.0.0.1:5556",
        "<tcp://127.0.0.1:5556",
    ])
    func rejectsGarbageWithAClearError(text: String) {
        do throws(ZMQError) {
            let endpoint = try ZMQEndpoint(parsing: text)
            Issue.record("parsed \(text.debugDescription) as \(endpoint)")
        } catch {
            guard case .invalidEndpoint(let rejected, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(rejected == text)
            #expect(!reason.isEmpty)
            #expect(error.description.contains("\"\(text)\""))
            #expect(error.description.contains("@tcp://127.0.0.1:5556 to bind"))
            #expect(error.code == EINVAL)
        }
    }

    @Test(arguments: Transport.allCases)
    func attachBindsAndConnects(transport: Transport) throws {
        try withTemporaryDirectory { directory in
            let context = try ZMQContext()
            let pull = try ZMQSocket(context, type: .pull)
            let push = try ZMQSocket(context, type: .push)
            try pull.setReceiveTimeout(.seconds(5))
            let requested = switch transport {
            case .tcp: "@tcp://127.0.0.1:*"
            case .ipc: "@ipc://\(directory)/in.sock"
            }
            try pull.attach(requested)
            let bound = try pull.lastEndpoint
            switch transport {
            case .tcp:
                #expect(bound.hasPrefix("tcp://127.0.0.1:"))
                #expect(!bound.hasSuffix(":*"))
            case .ipc:
                #expect(bound == "ipc://\(directory)/in.sock")
            }
            try push.attach(">" + bound)
            #expect(try push.sendMultipart([bytes("stream"), bytes("{\"v\":1}")]) == .sent)
            #expect(try pull.receiveFrames() == .frames([bytes("stream"), bytes("{\"v\":1}")]))
        }
    }

    @Test func libzmqErrorsKeepTheCodeAndTheFunction() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context, type: .pull)
        let second = try ZMQSocket(context, type: .pull)
        try first.bind("tcp://127.0.0.1:*")
        let taken = try first.lastEndpoint
        #expect(throws: ZMQError.failed(code: EADDRINUSE, function: "zmq_bind")) { try second.bind(taken) }
        #expect(throws: ZMQError.failed(code: EPROTONOSUPPORT, function: "zmq_connect")) {
            try second.connect("nosuch://x")
        }
        let error = ZMQError.failed(code: EADDRINUSE, function: "zmq_bind")
        #expect(error.description == "zmq_bind: Address already in use (errno \(EADDRINUSE))")
        #expect(ZMQError.terminated(function: "zmq_recv").description.contains("Context was terminated"))
    }
}
