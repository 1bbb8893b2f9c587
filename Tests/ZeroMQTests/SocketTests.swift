import Dispatch
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// Real sockets on tcp://127.0.0.1:* and ipc:// in a temporary directory. Every receive that
/// expects a message has a timeout, so a bug fails the test instead of hanging it.
@Suite(.timeLimit(.minutes(1)))
struct SocketTests {
    @Test(arguments: Transport.allCases)
    func pubSubRoundTripsMultipartMessagesAndFiltersTopics(transport: Transport) throws {
        try withTemporaryDirectory { directory in
            let context = try ZMQContext()
            let pub = try ZMQSocket(context, type: .pub)
            let sub = try ZMQSocket(context, type: .sub)
            try sub.subscribe("sensor.")
            try sub.setReceiveTimeout(.milliseconds(20))
            _ = try link(pub, sub, over: transport, in: directory)

            let warmup = [bytes("sensor.warmup"), []]
            let joined = try untilJoined { () throws in
                #expect(try pub.sendMultipart(warmup) == .sent)
            } receive: {
                try sub.receiveFrames().frames
            }
            try #require(joined, "the subscription never reached the publisher")

            try sub.setReceiveTimeout(.seconds(5))
            let messages: [[[UInt8]]] = [
                [bytes("other.1"), bytes("filtered out")],
                [bytes("sensor.1"), bytes("{\"v\":1}")],
                [bytes("sensor"), bytes("no dot: filtered out")],
                [bytes("sensor.2"), [], bytes("third frame"), [0, 255, 0]],
                [bytes("SENSOR.3"), bytes("case matters: filtered out")],
                [bytes("sensor.3")],
                [bytes("sensor.4"), [UInt8](repeating: 7, count: 100_000)],
            ]
            for message in messages {
                #expect(try pub.sendMultipart(message) == .sent)
            }
            // PUB keeps each subscriber's order, so the exact sequence shows the filter held back
            // the others (the last warm-ups may still be in flight ahead of them).
            var received: [[[UInt8]]] = []
            while received.count < 4 {
                guard let frames = try sub.receiveFrames().frames else {
                    Issue.record("timed out after \(received.count) messages")
                    break
                }
                if frames != warmup { received.append(frames) }
            }
            #expect(received == [messages[1], messages[3], messages[5], messages[6]])

        }
    }

    @Test(arguments: Transport.allCases)
    func pushPullDeliversInOrderIntoAReusedBuffer(transport: Transport) throws {
        try withTemporaryDirectory { directory in
            let context = try ZMQContext()
            let push = try ZMQSocket(context, type: .push)
            let pull = try ZMQSocket(context, type: .pull)
            try pull.setReceiveTimeout(.seconds(5))
            _ = try link(pull, push, over: transport, in: directory)

            var buffer = ZMQMultipartBuffer(maxFrames: 2, capacity: 300)
            let topic = bytes("stream-7")
            var payload = [UInt8](repeating: 0, count: 8)
            for i in 0..<200 {
                withUnsafeBytes(of: UInt64(i).littleEndian) { payload.replaceSubrange(0..<8, with: $0) }
                let sent = try topic.withUnsafeBytes { t in
                    try payload.withUnsafeBytes { p in try push.sendMultipart([t, p]) }
                }
                #expect(sent == .sent)
            }
            for i in 0..<200 {
                let result = try pull.receiveMultipart(into: &buffer)
                try #require(result == .message(frames: 2), "message \(i): \(result)")
                #expect(buffer.count == 2)
                #expect(buffer.bytes(0) == topic)
                let value = buffer.frame(1).loadUnaligned(as: UInt64.self)
                #expect(UInt64(littleEndian: value) == UInt64(i))
            }
            #expect(try pull.receiveMultipart(into: &buffer, flags: .dontWait) == .wouldBlock)
            #expect(buffer.count == 0)
        }
    }

    @Test func singleFramesWithSendMoreMakeOneMessage() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context, type: .push)
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveTimeout(.seconds(5))
        _ = try link(pull, push, over: .tcp, in: "")
        let a = bytes("first"), b = bytes("second")
        #expect(try a.withUnsafeBytes { try push.send($0, flags: .sendMore) } == .sent)
        #expect(try b.withUnsafeBytes { try push.send($0) } == .sent)
        #expect(try push.send(UnsafeRawBufferPointer(start: nil, count: 0)) == .sent)
        #expect(try pull.receiveFrames() == .frames([a, b]))
        #expect(try pull.receiveFrames() == .frames([[]]))
    }

    @Test func nonBlockingCallsReturnWouldBlock() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        try pull.bind("tcp://127.0.0.1:*")
        var buffer = ZMQMultipartBuffer(maxFrames: 4, capacity: 64)
        #expect(try pull.receiveMultipart(into: &buffer, flags: .dontWait) == .wouldBlock)
        #expect(try pull.receiveFrames(flags: .dontWait) == .wouldBlock)

        // A bound PUSH with no peer has nowhere to queue a message.
        let push = try ZMQSocket(context, type: .push)
        try push.bind("tcp://127.0.0.1:*")
        #expect(try push.sendMultipart([bytes("a"), bytes("b")], flags: .dontWait) == .wouldBlock)
        let frame = bytes("x")
        #expect(try frame.withUnsafeBytes { try push.sendMultipart([$0], flags: .dontWait) } == .wouldBlock)
    }

    @Test func receiveTimeoutReturnsWouldBlockNotAnError() throws {
        let context = try ZMQContext()
        let sub = try ZMQSocket(context, type: .sub)
        try sub.subscribe()
        try sub.bind("tcp://127.0.0.1:*")
        try sub.setReceiveTimeout(.milliseconds(50))
        #expect(try sub.option(.receiveTimeout) == 50)
        var buffer = ZMQMultipartBuffer(maxFrames: 2, capacity: 64)
        let start = ContinuousClock.now
        #expect(try sub.receiveMultipart(into: &buffer) == .wouldBlock)
        #expect(ContinuousClock.now - start >= .milliseconds(40))
        #expect(try sub.receiveFrames() == .wouldBlock)
    }

    @Test func sendTimeoutReturnsWouldBlockNotAnError() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context, type: .push)
        try push.bind("tcp://127.0.0.1:*")
        try push.setSendTimeout(.milliseconds(30))
        #expect(try push.sendMultipart([bytes("nobody listens")]) == .wouldBlock)
    }

    @Test func bufferReportsOversizeAndStaysInStep() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context, type: .push)
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveTimeout(.seconds(5))
        _ = try link(pull, push, over: .tcp, in: "")
        var buffer = ZMQMultipartBuffer(maxFrames: 2, capacity: 16)

        let big = [bytes("topic"), [UInt8](repeating: 1, count: 100)]
        let many = [bytes("t"), bytes("a"), bytes("b")]
        let long = [[UInt8](repeating: 2, count: 17)]
        let exact = [bytes("topic"), bytes("eleven byte")]
        let empty: [[UInt8]] = [[], []]
        for message in [big, many, long, exact, empty] {
            #expect(try push.sendMultipart(message) == .sent)
        }

        // Too many bytes: the topic that fitted is kept (to say which stream sent it).
        #expect(try pull.receiveMultipart(into: &buffer) == .truncated(frames: 2, bytes: 105))
        #expect(buffer.count == 1)
        #expect(buffer.bytes(0) == bytes("topic"))
        // Too many frames.
        #expect(try pull.receiveMultipart(into: &buffer) == .truncated(frames: 3, bytes: 3))
        #expect(buffer.count == 2)
        #expect(buffer.bytes(0) == bytes("t"))
        #expect(buffer.bytes(1) == bytes("a"))
        // One frame larger than the whole buffer.
        #expect(try pull.receiveMultipart(into: &buffer) == .truncated(frames: 1, bytes: 17))
        #expect(buffer.count == 0)
        // Exactly the capacity, then empty frames: the socket is still at a message boundary.
        #expect(try pull.receiveMultipart(into: &buffer) == .message(frames: 2))
        #expect(buffer.bytes(0) == exact[0])
        #expect(buffer.bytes(1) == exact[1])
        #expect(try pull.receiveMultipart(into: &buffer) == .message(frames: 2))
        #expect(buffer.frame(0).count == 0)
        #expect(buffer.frame(1).count == 0)
        #expect(try pull.receiveMultipart(into: &buffer, flags: .dontWait) == .wouldBlock)
    }

    @Test func maxMessageSizeDropsTheSenderNotTheSocket() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setMaxMessageSize(1000)
        #expect(try pull.maxMessageSize == 1000)
        try pull.bind("tcp://127.0.0.1:*")
        let address = try pull.lastEndpoint
        let offender = try ZMQSocket(context, type: .push)
        let other = try ZMQSocket(context, type: .push)
        try offender.setOption(.reconnectInterval, 20)
        try offender.connect(address)
        try other.connect(address)

        #expect(try offender.sendMultipart([bytes("too big"), [UInt8](repeating: 9, count: 4000)]) == .sent)
        #expect(try other.sendMultipart([bytes("other"), bytes("fine")]) == .sent)
        try pull.setReceiveTimeout(.seconds(5))
        #expect(try pull.receiveFrames() == .frames([bytes("other"), bytes("fine")]))

        // The offender was disconnected; it reconnects, and small messages get through again
        // (the first ones may go down the dead connection, so keep sending until one arrives).
        try pull.setReceiveTimeout(.milliseconds(20))
        let heard = try untilJoined { () throws in
            #expect(try offender.sendMultipart([bytes("offender"), bytes("small")], flags: .dontWait) != .terminated)
        } receive: {
            guard let frames = try pull.receiveFrames().frames else { return nil }
            #expect(frames.allSatisfy { $0.count <= 1000 }, "a frame over the limit arrived")
            return frames == [bytes("offender"), bytes("small")] ? frames : nil
        }
        #expect(heard, "the offender never got through after reconnecting")
        #expect(try other.sendMultipart([bytes("other"), bytes("still fine")]) == .sent)
        try pull.setReceiveTimeout(.seconds(5))
        while let frames = try pull.receiveFrames().frames {
            #expect(frames.allSatisfy { $0.count <= 1000 }, "a frame over the limit arrived")
            if frames == [bytes("other"), bytes("still fine")] { return }
        }
        Issue.record("the second message of the well-behaved peer never arrived")
    }

    @Test func contextShutdownUnblocksAReceivingThread() throws {
        final class Outcome: Sendable {
            let value = Mutex<Result<ZMQReceiveResult, ZMQError>?>(nil)
        }
        let context = try ZMQContext()
        let outcome = Outcome()
        let ready = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let result = Result { () throws(ZMQError) -> ZMQReceiveResult in
                let pull = try ZMQSocket(context, type: .pull)  // no receive timeout: blocks for good
                try pull.bind("tcp://127.0.0.1:*")
                ready.signal()
                var buffer = ZMQMultipartBuffer(maxFrames: 2, capacity: 64)
                return try pull.receiveMultipart(into: &buffer)
            }
            outcome.value.withLock { $0 = result }
            ready.signal()
            done.signal()
        }
        thread.start()
        try #require(ready.wait(timeout: .now() + 5) == .success, "the receiving thread did not start")
        Thread.sleep(forTimeInterval: 0.05)  // let it reach zmq_recv; shutdown works either way
        #expect(outcome.value.withLock { $0 } == nil, "the receive returned before the shutdown")
        context.shutdown()
        try #require(done.wait(timeout: .now() + 5) == .success, "the receive did not return after shutdown")
        #expect(outcome.value.withLock { $0 } == .success(.terminated))

        // After shutdown: no new sockets, every call on an existing one says terminated.
        #expect(throws: ZMQError.terminated(function: "zmq_socket")) { _ = try ZMQSocket(context, type: .push) }
        context.shutdown()  // again: harmless
    }

    @Test func callsOnASocketAfterShutdownSayTerminated() throws {
        let context = try ZMQContext()
        let pair = try ZMQSocket(context, type: .pair)
        try pair.bind("tcp://127.0.0.1:*")
        context.shutdown()
        var buffer = ZMQMultipartBuffer(maxFrames: 1, capacity: 8)
        #expect(try pair.receiveMultipart(into: &buffer) == .terminated)
        #expect(try pair.receiveFrames() == .terminated)
        #expect(try pair.sendMultipart([bytes("x")]) == .terminated)
        var poller = ZMQPoller()
        poller.add(pair)
        #expect(try poller.poll(timeout: .seconds(1)) == .terminated)
        do throws(ZMQError) {
            try pair.connect("tcp://127.0.0.1:1")
            Issue.record("connect after shutdown succeeded")
        } catch {
            guard case .terminated(let function) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(function == "zmq_connect")
        }
    }

    @Test func pollReportsWhichSocketIsReady() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context, type: .pull)
        let second = try ZMQSocket(context, type: .pull)
        let toFirst = try ZMQSocket(context, type: .push)
        let toSecond = try ZMQSocket(context, type: .push)
        _ = try link(first, toFirst, over: .tcp, in: "")
        _ = try link(second, toSecond, over: .tcp, in: "")

        var poller = ZMQPoller()
        let a = poller.add(first)
        let b = poller.add(second, events: .readable)
        #expect(poller.count == 2)
        #expect(try poller.poll(timeout: .zero) == .timedOut)
        #expect(try poller.poll(timeout: .milliseconds(20)) == .timedOut)

        #expect(try toSecond.sendMultipart([bytes("to second")]) == .sent)
        #expect(try poller.poll(timeout: .seconds(5)) == .ready(1))
        #expect(poller.events(at: a) == [])
        #expect(poller.events(at: b) == .readable)
        #expect(try second.receiveFrames(flags: .dontWait) == .frames([bytes("to second")]))

        #expect(try toFirst.sendMultipart([bytes("to first")]) == .sent)
        #expect(try toSecond.sendMultipart([bytes("to second again")]) == .sent)
        let deadline = ContinuousClock.now + .seconds(5)
        var both = false
        while !both && ContinuousClock.now < deadline {
            both = try poller.poll(timeout: .seconds(1)) == .ready(2)
        }
        #expect(both, "the two messages never were ready together")
        #expect(poller.events(at: a) == .readable)
        #expect(poller.events(at: b) == .readable)

        var writers = ZMQPoller()
        let w = writers.add(toFirst, events: [.readable, .writable])
        #expect(try writers.poll(timeout: .seconds(5)) == .ready(1))
        #expect(writers.events(at: w) == .writable)
    }

    @Test func optionsReadBackWhatWasSet() throws {
        let context = try ZMQContext(ioThreads: 2)
        let socket = try ZMQSocket(context, type: .sub)
        #expect(socket.type == .sub)
        #expect(try socket.option(.linger) == 0)
        #expect(try socket.option(.receiveTimeout) == -1)
        #expect(try socket.maxMessageSize == nil)
        try socket.setLinger(.milliseconds(250))
        try socket.setReceiveTimeout(.microseconds(1500))
        try socket.setSendTimeout(nil)
        try socket.setSendHighWaterMark(10)
        try socket.setReceiveHighWaterMark(20_000)
        try socket.setMaxMessageSize(65_536)
        try socket.setOption(.reconnectInterval, 50)
        #expect(try socket.option(.linger) == 250)
        #expect(try socket.option(.receiveTimeout) == 2)
        #expect(try socket.option(.sendTimeout) == -1)
        #expect(try socket.option(.sendHighWaterMark) == 10)
        #expect(try socket.option(.receiveHighWaterMark) == 20_000)
        #expect(try socket.maxMessageSize == 65_536)
        #expect(try socket.option(.reconnectInterval) == 50)
        try socket.setMaxMessageSize(nil)
        #expect(try socket.maxMessageSize == nil)
        try socket.setLinger(nil)
        #expect(try socket.option(.linger) == -1)
        try socket.setLinger(.zero)
        #expect(try socket.lastEndpoint == "")
        try socket.subscribe([0x01, 0x02])
        try socket.unsubscribe([0x01, 0x02])
    }

    @Test func misuseThrowsTheErrnoOfTheCall() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context, type: .push)
        // Subscribing is for SUB sockets; receiving is not for PUSH sockets.
        #expect(throws: ZMQError.failed(code: EINVAL, function: "zmq_setsockopt")) { try push.subscribe("x") }
        #expect(throws: ZMQError.failed(code: ENOTSUP, function: "zmq_recv")) {
            var buffer = ZMQMultipartBuffer(maxFrames: 1, capacity: 8)
            _ = try push.receiveMultipart(into: &buffer, flags: .dontWait)
        }
        #expect(throws: ZMQError.failed(code: ENOTSUP, function: "zmq_msg_recv")) {
            _ = try push.receiveFrames(flags: .dontWait)
        }
    }
}
