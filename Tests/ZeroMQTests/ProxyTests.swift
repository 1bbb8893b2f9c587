import Dispatch
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// `ZMQProxy` as the XSUB/XPUB forwarder, over real tcp sockets: publishers and subscribers meet
/// at the proxy, subscriptions travel up to the publishers, a capture socket sees the traffic,
/// and a context shutdown stops the proxy.
@Suite(.timeLimit(.minutes(1)))
struct ProxyTests {
    /// The proxy's thread: binds an XSUB frontend, an XPUB backend and a PUB capture socket on
    /// free ports in its own context, reports their addresses, and runs the proxy until that
    /// context is shut down.
    final class RunningProxy: Sendable {
        let context: ZMQContext
        let addresses = Mutex<(frontend: String, backend: String, capture: String)?>(nil)
        let outcome = Mutex<Result<Void, ZMQError>?>(nil)
        let bound = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)

        init() throws {
            context = try ZMQContext()
            let context = self.context
            let thread = Thread { [self] in
                let result = Result { () throws(ZMQError) in
                    let frontend = try ZMQSocket(context, type: .xsub)
                    let backend = try ZMQSocket(context, type: .xpub)
                    let capture = try ZMQSocket(context, type: .pub)
                    try frontend.bind("tcp://127.0.0.1:*")
                    try backend.bind("tcp://127.0.0.1:*")
                    try capture.bind("tcp://127.0.0.1:*")
                    let names = (try frontend.lastEndpoint, try backend.lastEndpoint, try capture.lastEndpoint)
                    addresses.withLock { $0 = names }
                    bound.signal()
                    try ZMQProxy.run(frontend: frontend, backend: backend, capture: capture)
                }
                outcome.withLock { $0 = result }
                bound.signal()  // when binding failed
                finished.signal()
            }
            thread.start()
        }
    }

    @Test func forwardsPublishersToSubscribersWithTheirFiltersAndCapturesAndStopsOnShutdown() throws {
        let proxy = try RunningProxy()
        try #require(proxy.bound.wait(timeout: .now() + 5) == .success)
        let (frontend, backend, captureAddress) = try #require(proxy.addresses.withLock { $0 }, "\(String(describing: proxy.outcome.withLock { $0 }))")

        // Clients in a context of their own, which the proxy's shutdown leaves alone.
        let context = try ZMQContext()
        let pubA = try ZMQSocket(context, type: .pub), pubB = try ZMQSocket(context, type: .pub)
        try pubA.connect(frontend)
        try pubB.connect(frontend)
        let plant = try ZMQSocket(context, type: .sub), everything = try ZMQSocket(context, type: .sub)
        try plant.subscribe("plant/")
        try everything.subscribe("")
        try plant.setReceiveTimeout(.milliseconds(20))
        try everything.setReceiveTimeout(.milliseconds(20))
        try plant.connect(backend)
        try everything.connect(backend)
        let capture = try ZMQSocket(context, type: .sub)
        try capture.subscribe("")
        try capture.setReceiveTimeout(.milliseconds(20))
        try capture.connect(captureAddress)

        // Past the slow joiner, for both publishers, both subscribers and the capture socket.
        func joined(_ pub: borrowing ZMQSocket, _ sub: borrowing ZMQSocket, topic: String) throws -> Bool {
            try untilJoined {
                _ = try pub.sendMultipart([bytes(topic), bytes("warm-up")])
            } receive: {
                guard let frames = try sub.receiveFrames().frames else { return nil }
                return frames.first == bytes(topic) ? frames : nil
            }
        }
        try #require(try joined(pubA, plant, topic: "plant/warm-a"))
        try #require(try joined(pubB, plant, topic: "plant/warm-b"))
        try #require(try joined(pubA, everything, topic: "plant/warm-a"))
        try #require(try joined(pubB, everything, topic: "plant/warm-b"))
        try #require(try joined(pubA, capture, topic: "plant/warm-c"))
        func drain(_ sub: borrowing ZMQSocket) throws {
            while try sub.receiveFrames().frames != nil {}
        }
        try drain(plant)
        try drain(everything)
        try drain(capture)

        // Two publishers, interleaved; the plant/ subscriber gets only its prefix, in each
        // publisher's order.
        try plant.setReceiveTimeout(.seconds(5))
        try everything.setReceiveTimeout(.seconds(5))
        try capture.setReceiveTimeout(.seconds(5))
        var sentA: [[[UInt8]]] = [], sentB: [[[UInt8]]] = []
        for i in 0..<50 {
            let a = [bytes(i % 2 == 0 ? "plant/a" : "office/a"), bytes("{\"v\": \(i)}")]
            let b = [bytes("plant/b"), bytes("{\"v\": \(-i)}"), [0, 1, 2]]
            #expect(try pubA.sendMultipart(a) == .sent)
            #expect(try pubB.sendMultipart(b) == .sent)
            sentA.append(a)
            sentB.append(b)
        }
        func receive(_ sub: borrowing ZMQSocket, _ count: Int) throws -> [[[UInt8]]] {
            var got: [[[UInt8]]] = []
            while got.count < count, let frames = try sub.receiveFrames().frames { got.append(frames) }
            return got
        }
        let all = try receive(everything, 100)
        #expect(all.filter { $0[0] == bytes("plant/b") } == sentB, "every frame of every message, in order")
        #expect(all.filter { $0[0] != bytes("plant/b") } == sentA)
        let filtered = try receive(plant, 75)
        #expect(filtered.filter { $0[0] == bytes("plant/a") } == sentA.filter { $0[0] == bytes("plant/a") })
        #expect(filtered.filter { $0[0] == bytes("plant/b") } == sentB)
        #expect(filtered.allSatisfy { $0[0].starts(with: bytes("plant/")) })
        try plant.setReceiveTimeout(.milliseconds(200))
        #expect(try plant.receiveFrames() == .wouldBlock, "office/ never reaches the plant/ subscriber")
        let captured = try receive(capture, 100)
        #expect(Set(captured.map { $0.map { Data($0) } }) == Set((sentA + sentB).map { $0.map { Data($0) } }))

        // The shutdown of the proxy's context ends the proxy: it returns normally.
        #expect(proxy.finished.wait(timeout: .now() + 0.1) == .timedOut, "the proxy runs until shut down")
        proxy.context.shutdown()
        try #require(proxy.finished.wait(timeout: .now() + 5) == .success, "the proxy did not return after shutdown")
        #expect(throws: Never.self) { try proxy.outcome.withLock { $0 }?.get() }
    }

    @Test func aCaptureSocketThatCannotSendEndsTheProxyWithAnError() throws {
        final class Outcome: Sendable {
            let error = Mutex<ZMQError?>(nil)
            let finished = DispatchSemaphore(value: 0)
        }
        let context = try ZMQContext(), outcome = Outcome()
        let backendAddress = Mutex<String?>(nil), bound = DispatchSemaphore(value: 0)
        let thread = Thread {
            do throws(ZMQError) {
                let frontend = try ZMQSocket(context, type: .xsub)
                let backend = try ZMQSocket(context, type: .xpub)
                let capture = try ZMQSocket(context, type: .sub)  // a SUB cannot send what it captures
                try frontend.bind("tcp://127.0.0.1:*")
                try backend.bind("tcp://127.0.0.1:*")
                try capture.bind("tcp://127.0.0.1:*")
                let address = try backend.lastEndpoint
                backendAddress.withLock { $0 = address }
                bound.signal()
                try ZMQProxy.run(frontend: frontend, backend: backend, capture: capture)
            } catch {
                outcome.error.withLock { $0 = error }
            }
            bound.signal()
            outcome.finished.signal()
        }
        thread.start()
        try #require(bound.wait(timeout: .now() + 5) == .success)
        let address = try #require(backendAddress.withLock { $0 })
        // A subscriber's subscription reaches the backend: the proxy captures it, and fails.
        let clients = try ZMQContext()
        let sub = try ZMQSocket(clients, type: .sub)
        try sub.subscribe("")
        try sub.connect(address)
        let ended = outcome.finished.wait(timeout: .now() + 5)
        if ended == .timedOut { context.shutdown() }  // never leave the proxy running
        try #require(ended == .success, "the proxy went on")
        let error = try #require(outcome.error.withLock { $0 })
        #expect(error.function == "zmq_proxy")
        #expect(error.code == ENOTSUP, "\(error)")
    }
}
