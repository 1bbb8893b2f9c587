// The publisher thread (docs/architecture.md, "The path of a sample"): owns the PUB socket;
// encodes each forecast (RNNWire's `ForecastEncoder`) and publishes it under its stream id.

import Foundation
import Logging
import RNNBasics
import RNNCore
import RNNMetrics
import RNNState
import RNNWire
import Synchronization
import ZeroMQ

extension Daemon {

    func publisher(_ context: ZMQContext, gate: StartupGate) {
        do {
            try publisherLoop(context, gate: gate)
        } catch {
            if !gate.report(error: "forecasts socket: \(error)") { fail("publisher: \(error)") }
        }
    }

    private func publisherLoop(_ context: ZMQContext, gate: StartupGate) throws {
        let c = configuration
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveHighWaterMark(c.queueCapacity)
        try pull.bind(Self.forecastsAddress)
        try pull.setReceiveTimeout(.milliseconds(500))  // idle, the loop still turns (the watchdog)
        // XPUB rather than PUB, to read the subscriptions. libzmq queues up to the high-water
        // mark for each subscriber and past it drops that subscriber's forecasts alone, so one
        // that stalls costs the others nothing. Those drops are not counted: libzmq does not
        // report them (subscribers see them as gaps in `seq`; docs/protocol.md). The other way,
        // ZMQ_XPUB_NODROP, counts them but refuses a forecast to every subscriber as soon as one
        // is full: a single stalled subscriber then stopped all of them.
        let pub = try ZMQSocket(context, type: .xpub)
        if let keys = curve.keys { try pub.serveCurve(keys, domain: CurveAccess.forecastsDomain) }
        // What subscribers send is subscriptions, a byte and a prefix: a prefix longer than a
        // forecast's topic (the topic prefix and the stream id, 510 bytes at most) matches
        // nothing, so a larger message is cut off and its sender disconnected.
        try pub.setMaxMessageSize(1024)
        try pub.setSendHighWaterMark(c.subscriberHighWaterMark)
        try pub.setLinger(.seconds(1))
        try pub.attach(c.publish)
        if c.publish.hasPrefix("@") {
            let bound = try pub.lastEndpoint
            logger.info("forecasts out: \(bound)")
        }
        _ = gate.report(error: nil)

        let maxValues = c.model.horizon * c.maxInputs
        let batchCapacity = RecordBatch.capacity(
            largestRecord: ForecastRecord.size(idLength: WireLimits.maxTopicBytes, values: maxValues, channels: c.maxInputs))
        var message = ZMQMultipartBuffer(maxFrames: 1, capacity: batchCapacity)
        // The forecast, then its lower and upper bounds.
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * maxValues)
        // The missing channels, then the stuck ones.
        let channels = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: 2 * c.maxInputs)
        // The encoded frames, copied out of the encoder's arrays so the socket is used outside
        // any closure; room for the longest forecast (a float takes at most 15 characters, an
        // escaped byte of the stream id 6; three numbers a value with the band, a fourth for a
        // target's anomaly score; a channel index 6, in `missing` and in `stuck`; an instant of
        // `at` at most 22, sign, 16 digits, point, 3 decimals and comma).
        let frameCapacity = c.forecastTopicPrefix.utf8.count + 7 * WireLimits.maxTopicBytes + 4 * 16 * maxValues
            + 2 * 6 * c.maxInputs + 24 * c.model.horizon + 256
        let frames = UnsafeMutableRawPointer.allocate(byteCount: frameCapacity, alignment: 8)
        defer {
            values.deallocate()
            channels.deallocate()
            frames.deallocate()
        }
        var encoder = ForecastEncoder(topicPrefix: Array(c.forecastTopicPrefix.utf8))
        // XPUB passes subscriptions up as messages; they are read and discarded now and then.
        var subscriptions = ZMQMultipartBuffer(maxFrames: 1, capacity: 512)
        let latency = timings?.latency

        /// Encodes and publishes one forecast record; false once the context is shutting down.
        func publish(_ record: UnsafeRawBufferPointer) throws -> Bool {
            let f = ForecastRecord.read(record)
            let n = f.values.count / 4, band = !f.lower.isEmpty
            for i in 0..<n {
                values[i] = f.values.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                if band {
                    values[n + i] = f.lower.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                    values[2 * n + i] = f.upper.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                }
            }
            let missing = f.missing.count / 2, stuck = f.stuck.count / 2
            for k in 0..<missing { channels[k] = f.missing.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self) }
            for k in 0..<stuck { channels[missing + k] = f.stuck.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self) }
            encoder.encode(
                stream: f.id, seq: f.seq, timestamp: f.timestamp, interval: f.interval, horizon: f.horizon,
                forecast: UnsafeBufferPointer(rebasing: values[0..<n]),
                lower: band ? UnsafeBufferPointer(rebasing: values[n..<(2 * n)]) : nil,
                upper: band ? UnsafeBufferPointer(rebasing: values[(2 * n)..<(3 * n)]) : nil,
                anomaly: f.anomaly, targetAnomalies: f.targetAnomalies, updates: f.updates,
                missing: UnsafeBufferPointer(rebasing: channels[0..<missing]),
                stuck: UnsafeBufferPointer(rebasing: channels[missing..<(missing + stuck)]))
            let topicCount = encoder.topic.count, payloadCount = encoder.payload.count
            precondition(topicCount + payloadCount <= frameCapacity, "forecast frames exceed their buffer")
            encoder.topic.withUnsafeBytes { frames.copyMemory(from: $0.baseAddress!, byteCount: topicCount) }
            encoder.payload.withUnsafeBytes { (frames + topicCount).copyMemory(from: $0.baseAddress!, byteCount: payloadCount) }
            switch try pub.send(UnsafeRawBufferPointer(start: frames, count: topicCount), flags: [.sendMore, .dontWait]) {
            case .sent:
                // Once the first frame is taken, the rest of the message is too.
                _ = try pub.send(UnsafeRawBufferPointer(start: frames + topicCount, count: payloadCount))
                counters.forecasts.add(1, ordering: .relaxed)
                latency?.observe(monotonicNanoseconds() &- f.received, slot: 0)
                return true
            case .wouldBlock:
                // An XPUB without NODROP never refuses a message; it drops per subscriber instead.
                assertionFailure("the forecasts socket reported a full queue")
                return true
            case .terminated:
                return false
            }
        }

        var stopped = 0, handled = 0
        while stopped < c.workers {
            beats.add(0, 1)
            if handled & 255 == 0 {
                while case .message = try pub.receiveMultipart(into: &subscriptions, flags: .dontWait) {}
            }
            handled &+= 1
            switch try pull.receiveMultipart(into: &message) {
            case .wouldBlock, .truncated: continue
            case .terminated: return
            case .message: break
            }
            let frame = message.frame(0)
            if frame.isEmpty {
                stopped += 1
                continue
            }
            var open = true, taken = 0
            try RecordBatch.forEach(in: frame) { record in
                taken += 1
                if open { open = try publish(record) }
            }
            queues.release(c.workers, taken)
            guard open else { return }
        }
    }
}
