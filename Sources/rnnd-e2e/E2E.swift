import ArgumentParser
import Foundation
import Synchronization
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `rnnd-e2e`: the processes of the end-to-end benchmark (`bench/e2e.sh`). Each subcommand is a
/// separate process and prints exactly one JSON line on stdout when it ends; progress and
/// errors go to stderr.
///
/// - `publish`: samples round-robin over N streams at a paced rate or as fast as possible;
/// - `subscribe`: forecasts (or echoed samples) in, latency from their `t`;
/// - `echo`: the bare-ZeroMQ baseline, republishing every sample unchanged.
@main
struct E2E: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnnd-e2e",
        abstract: "Publisher, subscriber and echo of rnnd's end-to-end benchmark (bench/e2e.sh).",
        subcommands: [Publish.self, Subscribe.self, Echo.self]
    )
}

// MARK: - Clocks, CPU time, signals, output

/// Wall-clock time (CLOCK_REALTIME) in microseconds since the Unix epoch: what `t` carries.
@inline(__always)
func realtimeMicroseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

/// Monotonic time in nanoseconds, for pacing and durations.
@inline(__always)
func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func sleepNanoseconds(_ ns: Int64) {
    guard ns > 0 else { return }
    var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    var left = timespec()
    while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
}

/// User and system CPU seconds of this process so far.
func cpuSeconds() -> (user: Double, system: Double) {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

/// Set by SIGTERM or SIGINT; the loops poll it between messages.
let stopRequested = Atomic<Bool>(false)

func installStopHandlers() {
    _ = stopRequested.load(ordering: .relaxed)  // initialised before any handler can run
    signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
    signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
}

/// One JSON object on one line, keys in the order given.
struct JSONLine {
    private var parts: [String] = []

    mutating func add(_ key: String, _ value: Int) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, _ value: Int64) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, _ value: Bool) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, _ value: String) {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        parts.append("\"\(key)\":\"\(escaped)\"")
    }
    mutating func add(_ key: String, _ value: Double?, digits: Int = 3) {
        guard let value, value.isFinite else { parts.append("\"\(key)\":null"); return }
        parts.append("\"\(key)\":" + String(format: "%.\(digits)f", value))
    }
    mutating func addRaw(_ key: String, _ json: String) { parts.append("\"\(key)\":\(json)") }

    var text: String { "{" + parts.joined(separator: ",") + "}" }
}

func printLine(_ line: JSONLine) {
    FileHandle.standardOutput.write(Data((line.text + "\n").utf8))
}

func note(_ text: String) {
    FileHandle.standardError.write(Data("rnnd-e2e: \(text)\n".utf8))
}

/// `ZMQ_XPUB_NODROP` (69 in zmq.h, libzmq 4.1 and later): a PUB socket whose per-subscriber
/// queue is full makes `send` return EAGAIN instead of dropping the message silently. With it,
/// every sample the publisher counts as sent reaches rnnd's SUB socket (TCP pushes back, SUB
/// does not drop), so the only uncounted loss is before the subscription arrived.
let xpubNoDrop = ZMQSocketOption(rawValue: 69)

// MARK: - publish

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send samples round-robin over N streams (s0000, s0001, ...), paced or flooding.",
        discussion: """
            Each sample carries "t", its send time (CLOCK_REALTIME, Unix seconds, microseconds), \
            strictly increasing per stream. The publisher connects, waits --join-wait seconds \
            for the subscription to propagate (the slow joiner), sends --warmup samples and waits \
            0.2 s, then runs the timed part. The PUB socket is set to ZMQ_XPUB_NODROP, so a full \
            queue makes the publisher wait (counted as backpressure_waits) instead of dropping.
            """
    )

    @Option(help: "Where to send: >tcp://host:port connects, @tcp://... binds.")
    var endpoint: String = ">tcp://127.0.0.1:5556"

    @Option(help: "Number of streams; samples go round-robin over s0000 ... s(N-1).")
    var streams: Int = 1

    @Option(help: "Samples per second, paced against the monotonic clock.")
    var rate: Double?

    @Flag(help: "Send as fast as possible instead of pacing.")
    var flood = false

    @Option(help: "Length of the timed part in seconds.")
    var seconds: Double = 10

    @Option(help: "Stop the timed part after this many samples (whichever comes first with --seconds).")
    var count: Int?

    @Option(help: "Values per sample.")
    var inputs: Int = 1

    @Flag(help: "Binary v1 payloads (docs/protocol.md) instead of JSON.")
    var binary = false

    @Option(help: "Warm-up samples sent before the timed part (round-robin from s0000).")
    var warmup: Int = 5

    @Option(name: .customLong("join-wait"), help: "Seconds to wait after connecting, before the first sample.")
    var joinWait: Double = 0.5

    @Option(help: "Send high-water mark of the PUB socket, in messages.")
    var hwm: Int = 1000

    @Option(name: .customLong("bad-every"), help: ArgumentHelp(
        "Make every Nth message of the timed part a bad one instead of a sample, of each refusal reason in turn (0: none).",
        valueName: "n"))
    var badEvery: Int = 0

    /// The bad messages `--bad-every` sends, by the reason rnnd refuses them for (all after every
    /// stream had a good sample, so that the stream's own policies apply).
    static let badPayloads: [(reason: String, frames: [[UInt8]])] = [
        ("malformed_json", [Array(#"{"v": 1"#.utf8)]),
        ("non_finite_value", [Array(#"{"v": 1e39}"#.utf8)]),
        ("value_not_numeric", [Array(#"{"v": "high"}"#.utf8)]),
        ("missing_value", [Array(#"{"w": 1}"#.utf8)]),
        ("bad_timestamp", [Array(#"{"v": 1, "t": "noon"}"#.utf8)]),
        ("out_of_order", [Array(#"{"v": 1, "t": 1000}"#.utf8)]),
        ("width_changed", [Array(#"{"v": [1, 2, 3, 4, 5, 6, 7, 8, 9]}"#.utf8)]),
        ("empty_payload", [[]]),
        ("wrong_frame_count", [Array(#"{"v": 1}"#.utf8), Array("extra".utf8)]),
        ("malformed_binary", [[0x01, 0x00, 0x05, 0x00]]),
    ]

    func validate() throws {
        guard streams >= 1 && streams <= 10_000_000 else { throw ValidationError("--streams must be 1 ... 10000000") }
        guard (rate != nil) != flood else { throw ValidationError("give exactly one of --rate R and --flood") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        guard inputs >= 1 && inputs <= 4096 else { throw ValidationError("--inputs must be 1 ... 4096") }
        guard warmup >= 0, joinWait >= 0, hwm >= 0, badEvery >= 0 else {
            throw ValidationError("--warmup, --join-wait, --hwm and --bad-every must not be negative")
        }
        guard badEvery != 1 else { throw ValidationError("--bad-every 1 would send nothing good") }
    }

    func run() throws {
        installStopHandlers()
        let context = try ZMQContext(ioThreads: 1)
        let pub = try ZMQSocket(context, type: .pub)
        try pub.setSendHighWaterMark(hwm)
        try pub.setOption(xpubNoDrop, 1)
        try pub.setLinger(.seconds(5))  // deliver what is queued when we close (at most 5 s)
        try pub.attach(endpoint)

        // Stream ids: "s" + at least 4 digits.
        let digits = max(4, String(streams - 1).count)
        let idLength = 1 + digits
        let ids = UnsafeMutablePointer<UInt8>.allocate(capacity: streams * idLength)
        defer { ids.deallocate() }
        for s in 0..<streams {
            let text = Array(("s" + String(repeating: "0", count: digits - String(s).count) + String(s)).utf8)
            for k in 0..<idLength { ids[s * idLength + k] = text[k] }
        }
        let lastT = UnsafeMutablePointer<Int64>.allocate(capacity: streams)
        lastT.initialize(repeating: 0, count: streams)
        defer { lastT.deallocate() }

        // Values: sines with a period of 64 samples, a phase per channel and per stream.
        let period = 64
        let table = UnsafeMutablePointer<Float>.allocate(capacity: period * inputs)
        defer { table.deallocate() }
        for k in 0..<period {
            for c in 0..<inputs {
                table[k * inputs + c] = Float(sin(2 * Double.pi * Double(k) / Double(period) + Double(c)) * (1 + 0.1 * Double(c)))
            }
        }

        let payloadCapacity = 16 + 24 * inputs + 64
        let payload = UnsafeMutableRawPointer.allocate(byteCount: payloadCapacity, alignment: 8)
        defer { payload.deallocate() }
        var backpressureWaits = 0
        var sentTotal = 0
        var stopped = false
        // A queue that stays full this long means the receiver is gone or stuck: give up.
        var giveUpAt = monotonicNanoseconds() + Int64((joinWait + 5) * 1e9) + Int64(warmup) * 10_000_000
        var gaveUp = false

        var badSent = [Int](repeating: 0, count: Self.badPayloads.count)
        var badTurn = 0
        /// Sends message `frames` on stream `s`'s topic, waiting while the queue is full; false once stopped.
        func sendFrames(_ s: Int, _ frames: [[UInt8]]) throws -> Bool {
            let topic = UnsafeRawBufferPointer(start: ids + s * idLength, count: idLength)
            while true {
                switch try pub.send(topic, flags: [.sendMore, .dontWait]) {
                case .sent:
                    for (i, frame) in frames.enumerated() {
                        _ = try frame.withUnsafeBytes { try pub.send($0, flags: i == frames.count - 1 ? [] : .sendMore) }
                    }
                    sentTotal += 1
                    return true
                case .wouldBlock:
                    backpressureWaits += 1
                    if stopRequested.load(ordering: .relaxed) { stopped = true; return false }
                    sleepNanoseconds(20_000)
                case .terminated:
                    stopped = true
                    return false
                }
            }
        }

        /// Sends sample number `n` (round-robin stream n % streams), or with `--bad-every` every
        /// Nth time a bad message instead; false once stopped.
        func send(_ n: Int) throws -> Bool {
            if badEvery > 0, n >= streams, n % badEvery == badEvery - 1 {
                let bad = Self.badPayloads[badTurn % Self.badPayloads.count]
                badTurn += 1
                guard try sendFrames(n % streams, bad.frames) else { return false }
                badSent[(badTurn - 1) % Self.badPayloads.count] += 1
                return true
            }
            let s = n % streams
            var t = realtimeMicroseconds()
            if t <= lastT[s] { t = lastT[s] + 1 }  // strictly increasing per stream
            lastT[s] = t
            let phase = ((n / streams) + s * 7) % period
            let values = table + phase * inputs
            let length = binary
                ? writeBinary(t: t, values: values, count: inputs, into: payload)
                : writeJSON(t: t, values: values, count: inputs, into: payload)
            let topic = UnsafeRawBufferPointer(start: ids + s * idLength, count: idLength)
            while true {
                switch try pub.send(topic, flags: [.sendMore, .dontWait]) {
                case .sent:
                    _ = try pub.send(UnsafeRawBufferPointer(start: payload, count: length))
                    sentTotal += 1
                    return true
                case .wouldBlock:
                    backpressureWaits += 1
                    if stopRequested.load(ordering: .relaxed) { stopped = true; return false }
                    if backpressureWaits & 63 == 0 && monotonicNanoseconds() >= giveUpAt {
                        note("the PUB queue stayed full past the deadline (receiver gone or stuck): giving up")
                        gaveUp = true
                        stopped = true
                        return false
                    }
                    sleepNanoseconds(20_000)
                case .terminated:
                    stopped = true
                    return false
                }
            }
        }

        sleepNanoseconds(Int64(joinWait * 1e9))
        var n = 0
        for _ in 0..<warmup {
            guard try send(n) else { break }
            n += 1
            sleepNanoseconds(10_000_000)
        }
        let warmupSent = sentTotal
        if warmup > 0 { sleepNanoseconds(200_000_000) }

        let cpuBefore = cpuSeconds()
        let limit = count ?? Int.max
        let start = monotonicNanoseconds()
        let end = start + Int64(seconds * 1e9)
        giveUpAt = end + 5_000_000_000
        let firstUnix = realtimeMicroseconds()
        var timed = 0
        var bursts = 0
        if flood {
            while timed < limit && !stopped {
                // Check the clock and the stop flag once per 256 samples.
                let batch = min(256, limit - timed)
                for _ in 0..<batch {
                    guard try send(n) else { break }
                    n += 1
                    timed += 1
                }
                if monotonicNanoseconds() >= end || stopRequested.load(ordering: .relaxed) { break }
            }
        } else {
            let rate = rate!
            let interval = 1e9 / rate
            let maxBurst = max(1, Int((rate * 0.002).rounded(.up)))  // never more than 2 ms worth at once
            while timed < limit && !stopped && !stopRequested.load(ordering: .relaxed) {
                let now = monotonicNanoseconds()
                if now >= end { break }
                let due = min(limit, Int(Double(now - start) / interval) + 1)
                if due > timed {
                    let burst = min(due - timed, maxBurst)
                    for _ in 0..<burst {
                        guard try send(n) else { break }
                        n += 1
                        timed += 1
                    }
                    bursts += 1
                } else {
                    // Sleep until the next sample is due (at least 20 µs).
                    let next = start + Int64(Double(timed) * interval)
                    sleepNanoseconds(max(20_000, next - monotonicNanoseconds()))
                }
            }
        }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        let lastUnix = realtimeMicroseconds()
        let cpuAfter = cpuSeconds()

        var line = JSONLine()
        line.add("role", "publish")
        line.add("endpoint", endpoint)
        line.add("mode", flood ? "flood" : "rate")
        line.add("format", binary ? "binary" : "json")
        line.add("streams", streams)
        line.add("inputs", inputs)
        line.add("rate_target", rate, digits: 1)
        line.add("warmup_sent", warmupSent)
        line.add("sent", timed)
        line.add("sent_total", sentTotal)
        line.add("seconds", elapsed, digits: 4)
        line.add("rate_achieved", Double(timed) / elapsed, digits: 1)
        if !flood { line.add("bursts", bursts) }
        line.add("backpressure_waits", backpressureWaits)
        if badEvery > 0 {
            for (i, bad) in Self.badPayloads.enumerated() { line.add("bad_" + bad.reason, badSent[i]) }
        }
        line.add("stopped_by_signal", stopRequested.load(ordering: .relaxed))
        line.add("gave_up_on_full_queue", gaveUp)
        line.add("first_unix", Double(firstUnix) / 1e6, digits: 6)
        line.add("last_unix", Double(lastUnix) / 1e6, digits: 6)
        line.add("cpu_user_s", cpuAfter.user, digits: 3)
        line.add("cpu_sys_s", cpuAfter.system, digits: 3)
        line.add("cpu_timed_s", (cpuAfter.user + cpuAfter.system) - (cpuBefore.user + cpuBefore.system), digits: 3)
        printLine(line)
        // Closing the socket (end of scope) lingers up to 5 s until the queue is delivered.
    }
}

/// `[0x01][flags=1][count: UInt16 LE][t: Float64 LE][count × Float32 LE]`.
func writeBinary(t: Int64, values: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) -> Int {
    out.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
    out.storeBytes(of: 1, toByteOffset: 1, as: UInt8.self)
    out.storeBytes(of: UInt16(count).littleEndian, toByteOffset: 2, as: UInt16.self)
    let seconds = Double(t) / 1e6
    out.storeBytes(of: seconds.bitPattern.littleEndian, toByteOffset: 4, as: UInt64.self)
    for i in 0..<count {
        out.storeBytes(of: values[i].bitPattern.littleEndian, toByteOffset: 12 + 4 * i, as: UInt32.self)
    }
    return 12 + 4 * count
}

/// `{"v":[a,b,...],"t":SECONDS.MICROS}` (one value without brackets), written without
/// Foundation: values with six decimals.
func writeJSON(t: Int64, values: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) -> Int {
    let p = out.assumingMemoryBound(to: UInt8.self)
    var n = 0
    func put(_ c: UInt8) { p[n] = c; n += 1 }
    func putString(_ s: StaticString) { s.withUTF8Buffer { for c in $0 { put(c) } } }
    func putUnsigned(_ v: Int64, minDigits: Int = 1) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var k = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[k] = UInt8(48 + x % 10)
                x /= 10
                k += 1
            } while x > 0 || k < minDigits
            while k > 0 { k -= 1; put(d[k]) }
        }
    }
    func putFixed(_ value: Float) {
        var micro = Int64((Double(value) * 1e6).rounded())
        if micro < 0 { put(UInt8(ascii: "-")); micro = -micro }
        putUnsigned(micro / 1_000_000)
        put(UInt8(ascii: "."))
        putUnsigned(micro % 1_000_000, minDigits: 6)
    }
    putString("{\"v\":")
    if count > 1 { put(UInt8(ascii: "[")) }
    for i in 0..<count {
        if i > 0 { put(UInt8(ascii: ",")) }
        putFixed(values[i])
    }
    if count > 1 { put(UInt8(ascii: "]")) }
    putString(",\"t\":")
    putUnsigned(t / 1_000_000)
    put(UInt8(ascii: "."))
    putUnsigned(t % 1_000_000, minDigits: 6)
    put(UInt8(ascii: "}"))
    return n
}

// MARK: - subscribe

struct Subscribe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive forecasts (or echoed samples) and measure latency from their t.",
        discussion: """
            Latency = receive time (CLOCK_REALTIME) - the message's t: "t" of a JSON payload, or \
            the timestamp of a binary v1 payload. For forecasts, "seq" is followed per stream \
            (topics s<digits>): seq_gaps counts forecasts missing between two received ones, \
            seq_missing_before_first those before a stream's first received forecast. Ends after \
            --seconds, after --expect messages, or --idle seconds after the last message.
            """
    )

    @Option(help: "Where to receive from: >tcp://host:port connects, @tcp://... binds.")
    var endpoint: String = ">tcp://127.0.0.1:5557"

    @Option(help: "Longest run in seconds.")
    var seconds: Double = 20

    @Option(help: "Stop after this many messages.")
    var expect: Int?

    @Option(help: "Stop this many seconds after the last message (0: never); counts only once a message arrived.")
    var idle: Double = 0

    @Option(help: "Receive high-water mark of the SUB socket, in messages.")
    var hwm: Int = 100_000

    @Option(help: "Subscription prefix.")
    var topic: String = ""

    @Option(help: "The first K messages (the publisher's warm-up) are counted but left out of latency and rate.")
    var warmup: Int = 0

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        if let expect, expect < 1 { throw ValidationError("--expect must be at least 1") }
        guard idle >= 0, hwm >= 0, warmup >= 0 else { throw ValidationError("--idle, --hwm and --warmup must not be negative") }
    }

    func run() throws {
        installStopHandlers()
        let context = try ZMQContext(ioThreads: 1)
        let sub = try ZMQSocket(context, type: .sub)
        try sub.setReceiveHighWaterMark(hwm)
        try sub.setReceiveTimeout(.milliseconds(50))
        try sub.subscribe(topic)
        try sub.attach(endpoint)

        var message = ZMQMultipartBuffer(maxFrames: 4, capacity: 1 << 20)
        var latencies: [Int32] = []
        latencies.reserveCapacity(1 << 22)
        var count = 0, withoutT = 0, wrongFrames = 0
        var lastSeq: [Int] = []  // per stream index, 0 = none received yet
        var seqGaps = 0, seqMissingBeforeFirst = 0, seqBackwards = 0, seqTracked = 0
        var firstReceive: Int64 = 0, lastReceive: Int64 = 0
        var lastMessageMono: Int64 = 0
        let startMono = monotonicNanoseconds()
        let deadline = startMono + Int64(seconds * 1e9)
        let idleNs = Int64(idle * 1e9)
        var endReason = "seconds"
        let number = UnsafeMutablePointer<CChar>.allocate(capacity: 48)
        defer { number.deallocate() }

        receiving: while true {
            if stopRequested.load(ordering: .relaxed) { endReason = "signal"; break }
            switch try sub.receiveMultipart(into: &message) {
            case .wouldBlock:
                let now = monotonicNanoseconds()
                if now >= deadline { endReason = "seconds"; break receiving }
                if idleNs > 0 && count > 0 && now - lastMessageMono >= idleNs { endReason = "idle"; break receiving }
                continue
            case .terminated: endReason = "terminated"; break receiving
            case .truncated: wrongFrames += 1; continue
            case .message(let frames):
                let received = realtimeMicroseconds()
                lastMessageMono = monotonicNanoseconds()
                count += 1
                let timed = count > warmup
                if count == warmup + 1 { firstReceive = received }
                if timed { lastReceive = received }
                guard frames == 2 else { wrongFrames += 1; break }
                let topicFrame = message.frame(0), payload = message.frame(1)
                if let t = timestampMicroseconds(payload, scratch: number) {
                    if timed { latencies.append(Int32(clamping: received - t)) }
                } else {
                    withoutT += 1
                }
                if let seq = integerAfter(key: "\"seq\":", in: payload), let s = streamIndex(topicFrame) {
                    seqTracked += 1
                    if s >= lastSeq.count { lastSeq.append(contentsOf: repeatElement(0, count: s + 1 - lastSeq.count)) }
                    let last = lastSeq[s]
                    if last == 0 {
                        seqMissingBeforeFirst += seq - 1
                    } else if seq > last + 1 {
                        seqGaps += seq - last - 1
                    } else if seq <= last {
                        seqBackwards += 1
                    }
                    if seq > last { lastSeq[s] = seq }
                }
            }
            if let expect, count >= expect { endReason = "expect"; break }
            if count & 1023 == 0 && monotonicNanoseconds() >= deadline { endReason = "seconds"; break }
        }
        let cpu = cpuSeconds()

        latencies.sort()
        func percentile(_ p: Double) -> Double? {
            guard !latencies.isEmpty else { return nil }
            let rank = Int((p / 100 * Double(latencies.count)).rounded(.up)) - 1
            return Double(latencies[min(max(rank, 0), latencies.count - 1)])
        }
        let timedCount = max(0, count - warmup)
        let span = Double(lastReceive - firstReceive) / 1e6
        var line = JSONLine()
        line.add("role", "subscribe")
        line.add("endpoint", endpoint)
        line.add("count", count)
        line.add("warmup", min(count, warmup))
        line.add("latency_samples", latencies.count)
        line.add("without_t", withoutT)
        line.add("wrong_frames", wrongFrames)
        line.add("span_s", timedCount > 1 ? span : nil, digits: 4)
        line.add("rate", timedCount > 1 && span > 0 ? Double(timedCount - 1) / span : nil, digits: 1)
        var lat = JSONLine()
        lat.add("p50", percentile(50), digits: 0)
        lat.add("p90", percentile(90), digits: 0)
        lat.add("p99", percentile(99), digits: 0)
        lat.add("max", latencies.last.map(Double.init), digits: 0)
        lat.add("min", latencies.first.map(Double.init), digits: 0)
        lat.add("mean", latencies.isEmpty ? nil : latencies.reduce(0.0) { $0 + Double($1) } / Double(latencies.count), digits: 1)
        line.addRaw("latency_us", lat.text)
        let seen = lastSeq.filter { $0 > 0 }
        line.add("streams_seen", seen.count)
        // The highest seq received per stream: how evenly the streams were served.
        line.add("last_seq_min", seen.min().map(Double.init), digits: 0)
        line.add("last_seq_max", seen.max().map(Double.init), digits: 0)
        line.add("seq_tracked", seqTracked)
        line.add("seq_gaps", seqGaps)
        line.add("seq_missing_before_first", seqMissingBeforeFirst)
        line.add("seq_backwards", seqBackwards)
        line.add("first_unix", timedCount > 0 ? Double(firstReceive) / 1e6 : nil, digits: 6)
        line.add("last_unix", timedCount > 0 ? Double(lastReceive) / 1e6 : nil, digits: 6)
        line.add("end", endReason)
        line.add("cpu_user_s", cpu.user, digits: 3)
        line.add("cpu_sys_s", cpu.system, digits: 3)
        printLine(line)
    }
}

/// The message's time in microseconds: `"t":` of a JSON payload, or the timestamp of a binary v1
/// payload; nil when there is none (or `null`).
func timestampMicroseconds(_ payload: UnsafeRawBufferPointer, scratch: UnsafeMutablePointer<CChar>) -> Int64? {
    guard let first = payload.first else { return nil }
    if first == 0x01 {
        guard payload.count >= 12, payload[1] & 1 == 1 else { return nil }
        let t = Double(bitPattern: UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 4, as: UInt64.self)))
        return t.isFinite ? Int64((t * 1e6).rounded()) : nil
    }
    guard let start = find(key: "\"t\":", in: payload) else { return nil }
    var n = 0
    var i = start
    while i < payload.count && n < 40 {
        let c = payload[i]
        guard (c >= 48 && c <= 57) || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
            || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") else { break }
        scratch[n] = CChar(bitPattern: c)
        n += 1
        i += 1
    }
    guard n > 0 else { return nil }
    scratch[n] = 0
    let t = strtod(scratch, nil)
    return t.isFinite ? Int64((t * 1e6).rounded()) : nil
}

/// The offset just after the first occurrence of `key` (skipping spaces), or nil.
func find(key: StaticString, in payload: UnsafeRawBufferPointer) -> Int? {
    let k = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    guard payload.count >= k.count else { return nil }
    var i = 0
    let last = payload.count - k.count
    outer: while i <= last {
        for j in 0..<k.count where payload[i + j] != k[j] {
            i += 1
            continue outer
        }
        var end = i + k.count
        while end < payload.count && payload[end] == 0x20 { end += 1 }
        return end
    }
    return nil
}

/// A non-negative integer after `key`, or nil.
func integerAfter(key: StaticString, in payload: UnsafeRawBufferPointer) -> Int? {
    guard let start = find(key: key, in: payload) else { return nil }
    var i = start, value = 0
    while i < payload.count, payload[i] >= 48, payload[i] <= 57 {
        value = value &* 10 &+ Int(payload[i] - 48)
        i += 1
    }
    return i > start ? value : nil
}

/// The number of a stream id `s<digits>` (the publisher's ids), or nil for any other id.
func streamIndex(_ topic: UnsafeRawBufferPointer) -> Int? {
    guard topic.count >= 2, topic.count <= 10, topic[0] == UInt8(ascii: "s") else { return nil }
    var value = 0
    for i in 1..<topic.count {
        let c = topic[i]
        guard c >= 48 && c <= 57 else { return nil }
        value = value * 10 + Int(c - 48)
    }
    return value
}

// MARK: - echo

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The bare-ZeroMQ baseline: republish every received message unchanged.",
        discussion: """
            One thread: SUB in, PUB out, with the high-water marks rnnd uses (10000 each by \
            default), so publisher -> echo -> subscriber crosses the same kind of sockets as \
            publisher -> rnnd -> subscriber, without decoding or learning. Runs until SIGTERM or \
            SIGINT (or --seconds) and then prints its counts.
            """
    )

    @Option(help: "SUB endpoint (samples in).")
    var sub: String = "@tcp://127.0.0.1:5556"

    @Option(help: "PUB endpoint (messages out).")
    var pub: String = "@tcp://127.0.0.1:5557"

    @Option(help: "Longest run in seconds.")
    var seconds: Double = 60

    @Option(help: "High-water mark of both sockets, in messages.")
    var hwm: Int = 10_000

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard hwm >= 0 else { throw ValidationError("--hwm must not be negative") }
    }

    func run() throws {
        installStopHandlers()
        let context = try ZMQContext(ioThreads: 1)
        let input = try ZMQSocket(context, type: .sub)
        try input.setReceiveHighWaterMark(hwm)
        try input.setReceiveTimeout(.milliseconds(100))
        try input.subscribe("")
        try input.attach(sub)
        let output = try ZMQSocket(context, type: .pub)
        try output.setSendHighWaterMark(hwm)
        try output.setLinger(.seconds(1))
        try output.attach(pub)
        note("echo: ready, \(sub) -> \(pub)")

        var message = ZMQMultipartBuffer(maxFrames: 8, capacity: 1 << 20)
        var received = 0, sent = 0, truncated = 0
        let deadline = monotonicNanoseconds() + Int64(seconds * 1e9)
        var endReason = "seconds"
        loop: while true {
            if stopRequested.load(ordering: .relaxed) { endReason = "signal"; break }
            switch try input.receiveMultipart(into: &message) {
            case .wouldBlock:
                if monotonicNanoseconds() >= deadline { break loop }
                continue
            case .terminated: endReason = "terminated"; break loop
            case .truncated: received += 1; truncated += 1; continue
            case .message(let frames):
                received += 1
                var ok = true
                for i in 0..<frames {
                    let result = try output.send(message.frame(i), flags: i < frames - 1 ? .sendMore : [])
                    if result != .sent { ok = false; break }
                }
                if ok { sent += 1 }
            }
            if received & 1023 == 0 && monotonicNanoseconds() >= deadline { break }
        }
        let cpu = cpuSeconds()
        var line = JSONLine()
        line.add("role", "echo")
        line.add("received", received)
        line.add("sent", sent)
        line.add("truncated", truncated)
        line.add("end", endReason)
        line.add("cpu_user_s", cpu.user, digits: 3)
        line.add("cpu_sys_s", cpu.system, digits: 3)
        printLine(line)
    }
}
