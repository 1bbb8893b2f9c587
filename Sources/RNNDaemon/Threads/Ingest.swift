// The ingest thread (docs/architecture.md, "The path of a sample"): owns the SUB socket; reads
// each message, validates and decodes it (RNNWire's `SampleDecoder`), and routes the sample by the
// hash of its stream id to one worker over an inproc pipe, in batches (`RecordBatch`).

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

    func ingest(_ context: ZMQContext, gate: StartupGate) {
        do {
            try ingestLoop(context, gate: gate)
        } catch {
            if !gate.report(error: "samples socket: \(error)") { fail("ingest: \(error)") }
        }
    }

    private func ingestLoop(_ context: ZMQContext, gate: StartupGate) throws {
        let c = configuration
        let workers = c.workers, shard = c.streamShard
        let sub = try ZMQSocket(context, type: .sub)
        if let keys = curve.keys { try sub.serveCurve(keys, domain: CurveAccess.samplesDomain) }
        // Messages far beyond the limit are cut off by libzmq (the peer is disconnected);
        // the rest are read and counted as payload_too_large.
        try sub.setMaxMessageSize(c.maxMessageBytes + WireLimits.maxTopicBytes + 1024)
        try sub.setReceiveHighWaterMark(c.queueCapacity)
        try sub.setReceiveTimeout(.milliseconds(100))
        for topic in c.topics { try sub.subscribe(topic) }
        for endpoint in c.subscribe {
            try sub.attach(endpoint)
            if endpoint.hasPrefix("@") {
                let bound = try sub.lastEndpoint
                logger.info("samples in: \(bound)")
            }
        }
        let pushes = UnsafeMutablePointer<ZMQSocket>.allocate(capacity: workers)
        var made = 0
        defer {
            pushes.deinitialize(count: made)
            pushes.deallocate()
        }
        for i in 0..<workers {
            let push = try ZMQSocket(context, type: .push)
            // The bound is `queues`, in samples; a batch holds at least one.
            try push.setSendHighWaterMark(c.queueCapacity)
            try push.setLinger(.seconds(2))
            try push.connect(Self.workerAddress(i))
            (pushes + made).initialize(to: push)
            made += 1
        }
        _ = gate.report(error: nil)

        var message = ZMQMultipartBuffer(maxFrames: 3, capacity: WireLimits.maxTopicBytes + c.maxMessageBytes + 1024)
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: c.maxInputs)
        defer { values.deallocate() }
        let largestRecord = SampleRecord.size(idLength: WireLimits.maxTopicBytes, count: c.maxInputs)
        let batches = (0..<workers).map { _ in RecordBatch(largestRecord: largestRecord) }
        let decoder = SampleDecoder(maxValues: c.maxInputs)
        var log = RateLimitedLog(logger: logger)
        let timed = timings != nil  // the latency metric: when each sample came off the socket

        /// Hands worker `worker` its batch; false once the context is shutting down.
        func flush(_ worker: Int) throws -> Bool {
            let batch = batches[worker]
            defer { batch.clear() }
            let room = queues.reserve(worker, batch.count)
            let sent = room ? try pushes[worker].send(batch.frame, flags: .dontWait) : .wouldBlock
            switch sent {
            case .sent: return true
            case .wouldBlock:
                if room { queues.release(worker, batch.count) }
                let r = DropReason.workerQueueFull
                counters.refuse(r.rawValue, count: batch.count)
                log.warning(reason: r.rawValue, message: "worker \(worker)'s queue is full: learning cannot keep up; \(batch.count) samples dropped", stream: nil)
                return true
            case .terminated: return false
            }
        }
        // On the way out, also after an error: what is batched goes first, then the stop
        // marker follows every sample already handed to each worker, so they drain and stop.
        defer {
            for i in 0..<made {
                if !batches[i].isEmpty { _ = try? flush(i) }
                _ = try? pushes[i].send(UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        var batched = 0
        var topics = c.topics, generation = 0
        receiving: while !stopping.load(ordering: .relaxed) {
            beats.add(ingestBeat, 1)
            if runtime.generation.load(ordering: .acquiring) != generation {
                // SIGHUP changed the topics: subscribe to the new prefixes, drop the old ones.
                generation = runtime.generation.load(ordering: .acquiring)
                let new = runtime.current.topics
                for topic in new where !topics.contains(topic) { try sub.subscribe(topic) }
                for topic in topics where !new.contains(topic) { try sub.unsubscribe(topic) }
                topics = new
            }
            let frames: Int
            // While samples are batched, only look for more that are already here; when none
            // are, the batches go out before waiting.
            switch try sub.receiveMultipart(into: &message, flags: batched > 0 ? .dontWait : []) {
            case .wouldBlock:
                if batched > 0 {
                    for i in 0..<workers where !batches[i].isEmpty {
                        guard try flush(i) else { break receiving }
                    }
                    batched = 0
                }
                continue
            case .terminated: break receiving
            case .truncated(let kept, _):
                counters.received.add(1, ordering: .relaxed)
                if let shard, kept > 0, !shard.owns(hash: streamHash(message.frame(0))) {
                    counters.otherShard.add(1, ordering: .relaxed)
                    continue
                }
                let reason = kept >= message.maxFrames ? SampleRejection.wrongFrameCount : .payloadTooLarge
                refuse(reason.rawValue, reason.description, stream: kept > 0 ? message.frame(0) : nil, log: &log)
                continue
            case .message(let n): frames = n
            }
            let received: UInt64 = timed ? monotonicNanoseconds() : 0
            counters.received.add(1, ordering: .relaxed)
            // Another instance's stream: counted, neither checked nor decoded (its owner does
            // both, and logs what is wrong), so that each message is refused by one instance.
            let hash = streamHash(message.frame(0))
            if let shard, !shard.owns(hash: hash) {
                counters.otherShard.add(1, ordering: .relaxed)
                continue
            }
            guard frames == 2 else {
                let r = SampleRejection.wrongFrameCount
                refuse(r.rawValue, r.description, stream: frames > 0 ? message.frame(0) : nil, log: &log)
                continue
            }
            let topic = message.frame(0), payload = message.frame(1)
            if let reason = validateStreamID(topic) {
                refuse(reason.rawValue, reason.description, stream: reason == .emptyTopic ? nil : topic, log: &log)
                continue
            }
            if payload.count > c.maxMessageBytes {
                let r = SampleRejection.payloadTooLarge
                refuse(r.rawValue, r.description, stream: topic, log: &log)
                continue
            }
            let sample: DecodedSample
            switch decoder.decode(payload, into: values) {
            case .failure(let reason):
                refuse(reason.rawValue, reason.description, stream: topic, log: &log)
                continue
            case .success(let s): sample = s
            }
            let worker = workerIndex(hash: hash, workers: workers)
            let batch = batches[worker]
            if !batch.fits(SampleRecord.size(idLength: topic.count, count: sample.count)) {
                guard try flush(worker) else { break receiving }
            }
            let length = SampleRecord.write(
                id: topic, received: received, values: UnsafeBufferPointer(rebasing: values[0..<sample.count]),
                timestamp: sample.timestamp, into: batch.next)
            batch.append(length: length)
            batched += 1
        }
    }

    private func refuse(_ reason: String, _ what: String, stream: UnsafeRawBufferPointer?, log: inout RateLimitedLog) {
        counters.refuse(reason)
        log.warning(reason: reason, message: what, stream: stream)
    }
}
