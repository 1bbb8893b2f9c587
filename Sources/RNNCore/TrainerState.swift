/// A trainer's whole mutable state as bytes, for checkpoints: what a restored trainer needs to
/// make exactly the forecasts and updates the original would have made next.
///
/// Layout (host byte order; `S` is the trainer's scalar, `P` the parameter count, `I` the
/// inputs, `F` the network's inputs per step, `R = k2 + 1` the window rows, `N` the recurrent
/// state size, `O` the outputs):
///
///     counters: samples, rejected, updates, clipped, skipped, state resets   6 × Int64
///     latest loss, latest gradient norm (NaN: none yet)                      2 × Float64
///     samples since the last update, optimizer steps                         2 × Int64
///     normaliser: count, then mean and variance per input                    Int64, 2·I × Float64
///     change scale: count, then mean square per input                        Int64, I × Float64
///     parameters                                                            P × S
///     optimizer moments: Adam 2·P × S, momentum P × S, SGD none,
///       Adafactor P bfloat16 (UInt16) then its factored second moment        (Optimizer.write)
///     the window ring: R rows of network inputs, then R samples as they came R·(F + I) × S
///     live state, carried state (where the next window starts)               2·N × S
///     latest forecast (original units), latest output (normalised)           2·O × S
///     the first sample of the current segment (record format 3 on)           Int64
///
/// A state of record format 2 ends before the segment's start, which is then 0.
/// The configuration is not in it: the caller stores it beside and rebuilds the trainer from it.
/// The fields up to the normaliser do not depend on the scalar or the cell: ``TrainerStateSummary``
/// reads them without building a trainer.
extension OnlineTrainer {
    /// A trainer of `configuration` continuing from `state` (what `writeState` wrote for a
    /// trainer of the same configuration, or of `saved`, which may differ from it in its
    /// optimizer and its window: ``readState(from:saved:)``); its weights are never randomly
    /// initialised.
    public convenience init(
        configuration: ModelConfiguration, workspace: TrainingWorkspace<S>? = nil, state: UnsafeRawBufferPointer,
        saved: ModelConfiguration? = nil
    ) throws(TrainerStateError) {
        self.init(configuration: configuration, workspace: workspace, initialize: false)
        try readState(from: state, saved: saved)
    }

    /// Bytes `writeState(into:)` writes.
    public var stateByteCount: Int {
        let c = configuration, s = MemoryLayout<S>.size
        return TrainerStateSummary.byteCount(inputs: c.inputs)
            + s * (network.layout.count + ringRows * (features + c.inputs) + 2 * network.stateSize + 2 * outputs)
            + optimizer.stateBytes + 8
    }

    /// Writes the state into `out` (`stateByteCount` bytes, any alignment). Call between samples.
    public func writeState(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= stateByteCount && !pendingLearn, "writeState: buffer too small or learn() pending")
        var w = StateWriter(base: out.baseAddress!)
        let k = counters
        for v in [k.samples, k.rejectedSamples, k.updates, k.clippedUpdates, k.skippedUpdates, k.stateResets] { w.put(Int64(v)) }
        w.put(k.lastLoss ?? .nan)
        w.put(k.lastGradientNorm ?? .nan)
        w.put(Int64(sinceUpdate))
        w.put(Int64(optimizer.steps))
        w.put(Int64(normalizer._count))
        for v in normalizer._mean { w.put(v) }
        for v in normalizer._variance { w.put(v) }
        w.put(Int64(changeScale._count))
        for v in changeScale._meanSquare { w.put(v) }
        let p = network.layout.count
        w.copy(network.parameters, p)
        optimizer.write(&w)
        w.copy(ring, ringRows * features)
        w.copy(values, ringRows * configuration.inputs)
        w.copy(liveState, network.stateSize)
        w.copy(carriedState, network.stateSize)
        w.copy(forecastBuffer, outputs)
        w.copy(liveOutput, outputs)
        w.put(Int64(segmentStart))
    }

    /// Replaces the state with one `writeState` wrote for a trainer of the same configuration
    /// (the caller checks that), or of `saved`, which may differ in two ways:
    /// - its optimizer: Adam's moments become Adafactor's and back (``Optimizer/adopt(_:)``);
    /// - its window (k2): the latest samples are kept, as many as both windows hold, and the
    ///   next window starts at the latest sample from the live state, as after a restart
    ///   (docs/checkpoints.md, "Restoring").
    /// Throws when the size is wrong or a value is impossible, and then leaves the trainer as it was.
    public func readState(from bytes: UnsafeRawBufferPointer, saved model: ModelConfiguration? = nil) throws(TrainerStateError) {
        let saved = model.flatMap {
            Optimizer<S>.converts(from: $0.optimizer, to: optimizer.kind) ? Optimizer<S>(kind: $0.optimizer, layout: network.layout) : nil
        }
        let savedRows = (model?.window ?? configuration.window) + 1
        let expected = stateByteCount - optimizer.stateBytes + (saved ?? optimizer).stateBytes
            + MemoryLayout<S>.size * (savedRows - ringRows) * (features + configuration.inputs)
        let formatTwo = bytes.count == expected - 8
        guard bytes.count == expected || formatTwo else {
            throw .wrongSize(expected: expected, found: bytes.count)
        }
        let inputs = configuration.inputs
        guard let head = TrainerStateSummary(state: bytes, inputs: inputs) else {
            throw .wrongSize(expected: expected, found: bytes.count)
        }
        let k = head.counters
        let counts = [k.samples, k.rejectedSamples, k.updates, k.clippedUpdates, k.skippedUpdates, k.stateResets,
                      head.optimizerSteps, head.normalizerCount, head.sinceUpdate, head.changeCount]
        guard counts.allSatisfy({ $0 >= 0 }), head.mean.allSatisfy(\.isFinite),
            head.variance.allSatisfy({ $0.isFinite && $0 >= 0 }),
            head.changeMeanSquare.allSatisfy({ $0.isFinite && $0 >= 0 })
        else { throw .impossibleValue }
        // Checked; from here on nothing can fail.
        counters = k
        // A smaller k1 than the state was saved with: update at the next sample.
        sinceUpdate = min(head.sinceUpdate, configuration.updateEvery - 1)
        optimizer.steps = head.optimizerSteps
        normalizer._count = head.normalizerCount
        normalizer._mean = head.mean
        normalizer._variance = head.variance
        changeScale._count = head.changeCount
        changeScale._meanSquare = head.changeMeanSquare
        var r = StateReader(base: bytes.baseAddress! + TrainerStateSummary.byteCount(inputs: inputs))
        let p = network.layout.count
        r.copy(into: network.parameters, p)
        if let saved {
            saved.read(&r)
            saved.steps = head.optimizerSteps
            optimizer.adopt(saved)
        } else {
            optimizer.read(&r)
        }
        if savedRows == ringRows {
            r.copy(into: ring, ringRows * features)
            r.copy(into: values, ringRows * inputs)
        } else {
            // Sample m sat in row m % savedRows; it goes to row m % ringRows.
            let n = counters.samples, kept = max(0, n - min(savedRows, ringRows))
            let rings = r.offset, valueRows = rings + savedRows * features * MemoryLayout<S>.size
            for m in kept..<n {
                r.offset = rings + (m % savedRows) * features * MemoryLayout<S>.size
                r.copy(into: ringRow(m), features)
                r.offset = valueRows + (m % savedRows) * inputs * MemoryLayout<S>.size
                r.copy(into: valueRow(m), inputs)
            }
            r.offset = valueRows + savedRows * inputs * MemoryLayout<S>.size
        }
        r.copy(into: liveState, network.stateSize)
        r.copy(into: carriedState, network.stateSize)
        r.copy(into: forecastBuffer, outputs)
        r.copy(into: liveOutput, outputs)
        _segmentStart = formatTwo ? 0 : min(max(0, Int(r.get(Int64.self))), counters.samples)
        if savedRows != ringRows, counters.samples > 0 {
            // The carried state belongs to the old window's start: the next window starts at the
            // latest sample instead, from the live state (one step later than exact: the state
            // before that sample is not kept), so its change is still taken.
            _segmentStart = max(_segmentStart, counters.samples - 1)
            carriedState.update(from: liveState, count: network.stateSize)
        }
    }
}

/// The trainer's state as records of format 1 held it (docs/checkpoints.md, "Format upgrades"),
/// before the change formulation and the calendar inputs existed: the layout above without the
/// change scale and without the samples as they came, its window `R·I` normalised samples (the
/// network's inputs of the `.level` formulation without calendar inputs, which every format-1
/// model was).
///
///     counters, latest loss and gradient norm, since-update, optimizer steps   as above
///     normaliser: count, then mean and variance per input                    Int64, 2·I × Float64
///     parameters; optimizer moments                                          (1 + m)·P × S
///     the window ring, R·I normalised samples                                R·I × S
///     live state, carried state; latest forecast, latest output              2·N × S, 2·O × S
extension OnlineTrainer {
    /// A trainer continuing from a state of format 1. `configuration` is the model the record
    /// names, with the `.level` formulation and no calendar inputs. The network, its optimizer,
    /// normaliser, window and recurrent states are taken as they were, so the network forecasts
    /// exactly what it would have; what format 1 did not hold is rebuilt from its window: the
    /// samples as they came (denormalised with the normaliser now, exact for the latest sample)
    /// and the change scale (the mean square of the window's changes).
    public convenience init(
        configuration: ModelConfiguration, workspace: TrainingWorkspace<S>? = nil, formatOneState bytes: UnsafeRawBufferPointer
    ) throws(TrainerStateError) {
        precondition(configuration.formulation == .level && !configuration.calendar, "format-1 models are .level without calendar inputs")
        self.init(configuration: configuration, workspace: workspace, initialize: false)
        try readFormatOneState(from: bytes)
    }

    /// Bytes of a format-1 state of this trainer's configuration.
    var formatOneStateByteCount: Int {
        let c = configuration, s = MemoryLayout<S>.size
        return 8 * (11 + 2 * c.inputs)
            + s * (network.layout.count + ringRows * c.inputs + 2 * network.stateSize + 2 * outputs) + optimizer.stateBytes
    }

    private func readFormatOneState(from bytes: UnsafeRawBufferPointer) throws(TrainerStateError) {
        guard bytes.count == formatOneStateByteCount else {
            throw .wrongSize(expected: formatOneStateByteCount, found: bytes.count)
        }
        let inputs = configuration.inputs
        var r = StateReader(base: bytes.baseAddress!)
        let k = r.counters()
        let since = Int(r.get(Int64.self)), steps = Int(r.get(Int64.self)), count = Int(r.get(Int64.self))
        let mean = (0..<inputs).map { _ in r.get(Double.self) }
        let variance = (0..<inputs).map { _ in r.get(Double.self) }
        let counts = [k.samples, k.rejectedSamples, k.updates, k.clippedUpdates, k.skippedUpdates, k.stateResets, since, steps, count]
        guard counts.allSatisfy({ $0 >= 0 }), mean.allSatisfy(\.isFinite), variance.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw .impossibleValue
        }
        counters = k
        sinceUpdate = min(since, configuration.updateEvery - 1)
        optimizer.steps = steps
        normalizer._count = count
        normalizer._mean = mean
        normalizer._variance = variance
        let p = network.layout.count
        r.copy(into: network.parameters, p)
        optimizer.read(&r)
        r.copy(into: ring, ringRows * inputs)  // `features` is `inputs` for .level without calendar
        r.copy(into: liveState, network.stateSize)
        r.copy(into: carriedState, network.stateSize)
        r.copy(into: forecastBuffer, outputs)
        r.copy(into: liveOutput, outputs)

        // What format 1 did not keep, from the window of the latest R samples.
        let n = k.samples, oldest = max(0, n - ringRows)
        for m in oldest..<n {
            let z = ringRow(m), x = valueRow(m)
            for j in 0..<inputs { x[j] = S(z[j].double * normalizer.scale(j) + normalizer.offset(j)) }
        }
        var squares = [Double](repeating: 0, count: inputs), changes = 0
        for m in max(oldest + 1, 1)..<max(n, 1) {
            let x = valueRow(m), previous = valueRow(m - 1)
            for j in 0..<inputs {
                let d = x[j].double - previous[j].double
                squares[j] += d * d
            }
            changes += 1
        }
        changeScale._count = changes
        changeScale._meanSquare = squares.map { changes > 0 ? $0 / Double(changes) : 0 }
    }
}

/// The leading fields of a saved state (the counters, the optimizer's steps and the
/// normaliser), read without building a trainer: what `rnnd checkpoint list` and `show` print.
public struct TrainerStateSummary: Sendable, Equatable {
    public var counters: TrainerCounters
    /// Samples since the last update (below k1).
    public var sinceUpdate: Int
    public var optimizerSteps: Int
    /// Samples the normaliser has seen.
    public var normalizerCount: Int
    /// Per input, in original units.
    public var mean: [Double]
    public var variance: [Double]
    /// Changes the change scale has seen, and their mean square per input.
    public var changeCount: Int
    public var changeMeanSquare: [Double]

    /// The summary of a state of a model with `inputs` channels; nil when `state` is too short
    /// to hold the fields.
    public init?(state: UnsafeRawBufferPointer, inputs: Int) {
        guard inputs >= 0, state.count >= Self.byteCount(inputs: inputs) else { return nil }
        var r = StateReader(base: state.baseAddress!)
        let k = r.counters()
        counters = k
        sinceUpdate = Int(r.get(Int64.self))
        optimizerSteps = Int(r.get(Int64.self))
        normalizerCount = Int(r.get(Int64.self))
        mean = (0..<inputs).map { _ in r.get(Double.self) }
        variance = (0..<inputs).map { _ in r.get(Double.self) }
        changeCount = Int(r.get(Int64.self))
        changeMeanSquare = (0..<inputs).map { _ in r.get(Double.self) }
    }
}

extension TrainerStateSummary {
    /// Bytes of the leading fields for a model of `inputs` channels.
    static func byteCount(inputs: Int) -> Int { 8 * (12 + 3 * inputs) }
}

/// Why a saved trainer state was not taken.
public enum TrainerStateError: Error, Equatable, CustomStringConvertible {
    case wrongSize(expected: Int, found: Int)
    /// A negative count or a non-finite normaliser statistic.
    case impossibleValue

    public var description: String {
        switch self {
        case .wrongSize(let expected, let found): "the state holds \(found) bytes where this model needs \(expected)"
        case .impossibleValue: "the state holds an impossible value (a negative count or a non-finite statistic)"
        }
    }
}

/// Sequential unaligned writes into raw memory.
struct StateWriter {
    var base: UnsafeMutableRawPointer
    var offset = 0

    mutating func put<T: BitwiseCopyable>(_ v: T) {
        base.storeBytes(of: v, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    mutating func copy<T>(_ p: UnsafeMutablePointer<T>, _ n: Int) {
        let bytes = n * MemoryLayout<T>.stride
        (base + offset).copyMemory(from: p, byteCount: bytes)
        offset += bytes
    }
}

/// Sequential unaligned reads from raw memory.
struct StateReader {
    var base: UnsafeRawPointer
    var offset = 0

    /// The trainer's counters, as every state format since the first begins with them.
    mutating func counters() -> TrainerCounters {
        var k = TrainerCounters()
        k.samples = Int(get(Int64.self))
        k.rejectedSamples = Int(get(Int64.self))
        k.updates = Int(get(Int64.self))
        k.clippedUpdates = Int(get(Int64.self))
        k.skippedUpdates = Int(get(Int64.self))
        k.stateResets = Int(get(Int64.self))
        let loss = get(Double.self), norm = get(Double.self)
        k.lastLoss = loss.isNaN ? nil : loss
        k.lastGradientNorm = norm.isNaN ? nil : norm
        return k
    }

    mutating func get<T: BitwiseCopyable>(_: T.Type) -> T {
        defer { offset += MemoryLayout<T>.size }
        return base.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    mutating func copy<T>(into p: UnsafeMutablePointer<T>, _ n: Int) {
        let bytes = n * MemoryLayout<T>.stride
        UnsafeMutableRawPointer(p).copyMemory(from: base + offset, byteCount: bytes)
        offset += bytes
    }
}

/// A forecaster's whole mutable state as bytes, for checkpoints (host byte order, unaligned;
/// `O` outputs, `W` the band window):
///
///     trainer state (above), its length first                                UInt64, bytes
///     counters: drifts, scored, banded, covered                              4 × Int64
///     the forecaster's numbers (ForecasterLayout lists the regions)          Float64 each
///     band windows: per output W scores in arrival order, W sorted           2·W·O × Float32
///     the latest forecast, lower and upper                                   3·O × Float32
///
/// Like the trainer's, the configuration is not in it.
extension Forecaster {
    /// A forecaster of `configuration` continuing from `state` (what `writeState` wrote for a
    /// forecaster of the same configuration, or of `saved`, whose optimizer and window may
    /// differ: ``OnlineTrainer/readState(from:saved:)``).
    public convenience init(
        configuration: ModelConfiguration, workspace: TrainingWorkspace<Float>? = nil, state bytes: UnsafeRawBufferPointer,
        saved: ModelConfiguration? = nil
    ) throws(TrainerStateError) {
        guard bytes.count >= 8 else { throw .wrongSize(expected: 8, found: bytes.count) }
        let trainerBytes = Int(clamping: bytes.loadUnaligned(as: UInt64.self))
        guard trainerBytes <= bytes.count - 8 else { throw .wrongSize(expected: trainerBytes + 8, found: bytes.count) }
        let trainer = try OnlineTrainer<Float>(
            configuration: configuration, workspace: workspace,
            state: UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + trainerBytes)]), saved: saved)
        self.init(trainer: trainer)
        try readOwnState(from: UnsafeRawBufferPointer(rebasing: bytes[(8 + trainerBytes)...]))
    }

    var ownStateByteCount: Int { 32 + 8 * stateCount + 4 * (ConformalBands.windowsCount(outputs: outputs) + 3 * outputs) }

    /// Bytes `writeState(into:)` writes.
    public var stateByteCount: Int { 8 + trainer.stateByteCount + ownStateByteCount }

    /// Writes the state into `out` (`stateByteCount` bytes, any alignment). Call between samples.
    public func writeState(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= stateByteCount && !pendingLearn, "writeState: buffer too small or learn() pending")
        let t = trainer.stateByteCount
        out.storeBytes(of: UInt64(t), as: UInt64.self)
        trainer.writeState(into: UnsafeMutableRawBufferPointer(rebasing: out[8..<(8 + t)]))
        var w = StateWriter(base: out.baseAddress! + 8 + t)
        for v in [counters.drifts, counters.scored, counters.banded, counters.covered] { w.put(Int64(v)) }
        events[Self.outlierEvents] = Double(counters.outliers)
        events[Self.shiftEvents] = Double(counters.levelShifts)
        events[Self.segmentEvents] = Double(counters.segments)
        w.copy(state, stateCount)
        w.copy(bandWindows, ConformalBands.windowsCount(outputs: outputs))
        w.copy(published, 3 * outputs)
    }

    /// The trainer's part of a saved forecaster state, without building anything: nil when the
    /// bytes are too short to hold it.
    public static func trainerState(in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard bytes.count >= 8 else { return nil }
        let n = bytes.loadUnaligned(as: UInt64.self)
        guard n <= UInt64(bytes.count - 8) else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + Int(n))])
    }

    /// The counters of a saved forecaster state of `configuration`, without building anything:
    /// the outliers, level shifts and segments too when the state is of the current format
    /// (0 for a state of record format 2, which did not count them).
    public static func counters(in bytes: UnsafeRawBufferPointer, configuration c: ModelConfiguration) -> ForecasterCounters? {
        guard let trainer = trainerState(in: bytes), bytes.count >= 8 + trainer.count + 32 else { return nil }
        let own = 8 + trainer.count
        var r = StateReader(base: bytes.baseAddress! + own)
        var counters = ForecasterCounters(reading: &r)
        // The events region sits where the state's format puts it (the history before it had
        // four experts' columns before format 6, five before format 7; formats 8 on changed
        // regions after it).
        let tail = 4 * (ConformalBands.windowsCount(outputs: c.outputs) + 3 * c.outputs)
        let layout = (6...Forecaster.recordFormat).reversed().map { ForecasterLayout(c, format: $0) }.first { bytes.count - own - 32 == 8 * $0.count + tail }
            ?? ForecasterLayout(c, format: 5)
        let events = own + 32 + 8 * layout.events
        if bytes.count >= events + 8 * 3 {
            func count(_ k: Int) -> Int {
                let v = bytes.loadUnaligned(fromByteOffset: events + 8 * k, as: Double.self)
                return v >= 0 && v < 1e15 ? Int(v) : 0
            }
            counters.outliers = count(outlierEvents)
            counters.levelShifts = count(shiftEvents)
            counters.segments = count(segmentEvents)
        }
        return counters
    }

    private func readOwnState(from bytes: UnsafeRawBufferPointer) throws(TrainerStateError) {
        // Record formats 2 to 5 had four experts and no direct expert (their layout is format 5's,
        // cut short); format 2 ended the numbers before the clock (formatTwoCount), format 3 before
        // the anomaly score's history (formatThreeCount), format 4 before the novelty's
        // (formatFourCount); format 6 had five experts and no seasonal one; format 7 ended before
        // the novelty's residual (formatSevenCount); formats 5 to 8 had a fourth novelty span;
        // format 9 ended before the surprise's routine (formatNineCount), format 10 before the
        // novelty's drift (formatTenCount), format 11 before its shape (formatElevenCount).
        let five = ForecasterLayout(configuration, format: 5), six = ForecasterLayout(configuration, format: 6)
        let eight = ForecasterLayout(configuration, format: 8)
        func saved(_ count: Int) -> Bool { bytes.count == ownStateByteCount - 8 * (stateCount - count) }
        let formatTwo = saved(five.formatTwoCount), formatThree = saved(five.formatThreeCount)
        let formatFour = saved(five.formatFourCount), formatFive = saved(five.count), formatSix = saved(six.count)
        let formatSeven = saved(eight.formatSevenCount), formatEight = saved(eight.count)
        // Formats 9 to 11 are this format's cut short: each later one added a region at the end.
        let cutShort = [layout.formatNineCount, layout.formatTenCount, layout.formatElevenCount].first(where: saved)
        let current = bytes.count == ownStateByteCount
        guard current || formatTwo || formatThree || formatFour || formatFive || formatSix || formatSeven || formatEight
            || cutShort != nil
        else {
            throw .wrongSize(expected: ownStateByteCount, found: bytes.count)
        }
        var r = StateReader(base: bytes.baseAddress!)
        var c = ForecasterCounters(reading: &r)
        guard c.drifts >= 0, c.scored >= 0, c.banded >= 0, c.covered >= 0 else { throw .impossibleValue }
        // Read into a copy first: a refused state leaves the forecaster as it was. An older
        // format's state becomes format 8's first, then format 9's, then this format's: a state
        // of format 9 to 11 is this format's cut short, its surprise never routine yet (9), its
        // novelty in no drift (9 and 10) and remembering no shape (9 to 11).
        let numbers = UnsafeMutablePointer<Double>.allocate(capacity: stateCount)
        defer { numbers.deallocate() }
        if current {
            r.copy(into: numbers, stateCount)
        } else if let kept = cutShort {
            r.copy(into: numbers, kept)
            (numbers + kept).update(repeating: 0, count: stateCount - kept)
        } else {
            let older = UnsafeMutablePointer<Double>.allocate(capacity: eight.count)
            defer { older.deallocate() }
            if formatEight {
                r.copy(into: older, eight.count)
            } else if formatSeven {
                r.copy(into: older, eight.formatSevenCount)
                NoveltyScore(in: older, layout: eight, targets: targets.count).startResidual()
            } else if formatSix {
                let earlier = UnsafeMutablePointer<Double>.allocate(capacity: six.count)
                defer { earlier.deallocate() }
                r.copy(into: earlier, six.count)
                newExpertRegions(from: earlier, layout: six, into: older, layout: eight)
            } else {
                let earlier = UnsafeMutablePointer<Double>.allocate(capacity: five.count)
                defer { earlier.deallocate() }
                if formatTwo {
                    r.copy(into: earlier, five.formatTwoCount)
                    newFormatThreeRegions(in: earlier, layout: five)
                    newFormatFourRegions(in: earlier, layout: five)
                    newFormatFiveRegions(in: earlier, layout: five)
                } else if formatThree {
                    r.copy(into: earlier, five.formatThreeCount)
                    newFormatFourRegions(in: earlier, layout: five)
                    newFormatFiveRegions(in: earlier, layout: five)
                } else if formatFour {
                    r.copy(into: earlier, five.formatFourCount)
                    newFormatFiveRegions(in: earlier, layout: five)
                } else {
                    r.copy(into: earlier, five.count)
                }
                newExpertRegions(from: earlier, layout: five, into: older, layout: eight)
            }
            newNoveltySpans(from: older, layout: eight, into: numbers)
        }
        let events = numbers + layout.events
        guard ConformalBands.isPlausible(
                levels: numbers + layout.bandLevels, inserted: numbers + layout.bandInserted, debts: numbers + layout.bandDebts,
                outputs: outputs),
            Combination.isPlausible(weights: numbers + layout.combinationWeights, outputs: outputs),
            SamplingClock.isPlausible(numbers + layout.clock),
            OutlierGate.isPlausible(numbers + layout.gate, inputs: inputs),
            AnomalyScore.isPlausible(numbers + layout.anomalyHistory, routine: numbers + layout.anomalyRoutine, targets: targets.count),
            NoveltyScore.isPlausible(
                numbers + layout.noveltyHistory, residual: numbers + layout.noveltyResidual, profile: numbers + layout.noveltyProfile,
                drift: numbers + layout.noveltyDrift, shape: numbers + layout.noveltyShape, targets: targets.count),
            DirectExpert.isPlausible(numbers + layout.directStatus, lookback: direct.lookback, horizon: horizon),
            SeasonalExpert.isPlausible(numbers + layout.seasonal, targets: targets.count, on: seasonal.isOn),
            (0..<4).allSatisfy({ events[$0] >= 0 && events[$0] == events[$0].rounded() && events[$0] < 1e15 })
        else { throw .impossibleValue }
        c.outliers = Int(events[Self.outlierEvents])
        c.levelShifts = Int(events[Self.shiftEvents])
        c.segments = Int(events[Self.segmentEvents])
        counters = c
        state.update(from: numbers, count: stateCount)
        combination.readmit(on: configuration.combines)
        r.copy(into: bandWindows, ConformalBands.windowsCount(outputs: outputs))
        bands.resortFarWindows()
        r.copy(into: published, 3 * outputs)
    }
}

extension Forecaster {
    /// The regions record format 3 added, for a state of format 2 (`numbers`, the layout's
    /// buffer): the clock as new (its first time comes with the next sample), the gate's
    /// references at the latest sample's values with no run, the values learned from as the
    /// latest samples' own, no events, and forecasts scored from the start.
    func newFormatThreeRegions(in numbers: UnsafeMutablePointer<Double>, layout: ForecasterLayout) {
        SamplingClock(base: numbers + layout.clock).start()
        let n = trainer.counters.samples, k = targets.count
        (numbers + layout.events).update(repeating: 0, count: 4)
        (numbers + layout.gate).update(repeating: 0, count: OutlierGate.count(inputs: inputs))
        guard n > 0 else { return }
        let latest = trainer.valueRow(n - 1)
        let gate = OutlierGate(base: numbers + layout.gate, inputs: inputs)
        gate.reset(to: latest)
        for m in max(0, n - rows)..<n {
            let x = trainer.valueRow(max(m, n - trainer.ringRows))
            for j in 0..<k { numbers[layout.cleanHistory + (m % rows) * k + j] = Double(x[targets[j]]) }
        }
    }

    /// The region record format 4 added, for a state of format 2 or 3: the anomaly score's
    /// statistics start over (the stream scores again once each target has folded in
    /// `AnomalyScore.targetWarmup` errors), with no quiet period.
    func newFormatFourRegions(in numbers: UnsafeMutablePointer<Double>, layout: ForecasterLayout) {
        AnomalyScore(
            latest: numbers + layout.anomaly, base: numbers + layout.anomalyHistory, routine: numbers + layout.anomalyRoutine,
            novelty: NoveltyScore(in: numbers, layout: layout, targets: targets.count)
        ).startSurprise()
    }

    /// The region record format 5 added, for a state of format 2 to 4: the novelty starts over
    /// (it scores again once each target has folded in `NoveltyScore.warmup` values), with no
    /// quiet period.
    func newFormatFiveRegions(in numbers: UnsafeMutablePointer<Double>, layout: ForecasterLayout) {
        // Format 5's part of the novelty only: the layout (format 5's) has no room for the rest.
        (numbers + layout.noveltyHistory).update(repeating: 0, count: NoveltyScore.count(targets: targets.count, format: layout.format))
    }

    /// A state of format 5 or 6 (`earlier`, in `old`'s layout) in format 8's layout (`numbers`,
    /// in `new`): the regions before the combination as they are; the columns of the experts
    /// the old format did not have (the direct expert's before format 6, the seasonal expert's
    /// before 7) added to the combination's weights at 0 (`Combination.readmit`, once the state is
    /// read, takes each in at the floor when it is on, and it earns its weight from there), and to
    /// every row of the history as persistence's forecast; the regions after the history as they
    /// are; the new experts' regions new (they learn from the next samples on).
    func newExpertRegions(
        from earlier: UnsafeMutablePointer<Double>, layout old: ForecasterLayout, into numbers: UnsafeMutablePointer<Double>,
        layout new: ForecasterLayout
    ) {
        // `layout` below is the layout written to (format 8's), not this forecaster's own.
        let layout = new, o = outputs, e0 = old.experts, e = layout.experts
        numbers.update(from: earlier, count: old.combinationWeights)
        for out in 0..<o {
            let from = earlier + old.combinationWeights + out * e0, to = numbers + layout.combinationWeights + out * e
            for x in 0..<e { to[x] = x < e0 ? from[x] : 0 }
        }
        (numbers + layout.smoothingLevels).update(from: earlier + old.smoothingLevels, count: layout.history - layout.smoothingLevels)
        for row in 0..<rows {
            let from = earlier + old.history + row * ForecastHistory.columns(experts: e0) * o
            let to = numbers + layout.history + row * ForecastHistory.columns * o
            for column in 0..<ForecastHistory.columns {
                let source = column < e0 ? column : column < e ? Expert.persistence.rawValue : column - (e - e0)
                (to + column * o).update(from: from + source * o, count: o)
            }
        }
        // From the bands' levels on, the regions are the same size in both formats up to the old
        // format's end; what follows is new.
        let kept = old.count - old.bandLevels
        (numbers + layout.bandLevels).update(from: earlier + old.bandLevels, count: kept)
        let fresh = layout.bandLevels + kept
        (numbers + fresh).update(repeating: 0, count: layout.count - fresh)
        if old.format < 6 {
            DirectExpert(
                gram: numbers + layout.directGram, cross: numbers + layout.directCross, weights: numbers + layout.directWeights,
                ring: numbers + layout.directRing, status: numbers + layout.directStatus, scratch: directScratch,
                targets: targets.count, horizon: horizon, lookback: direct.lookback
            ).start()
        }
        SeasonalExpert(base: numbers + layout.seasonal, targets: targets.count, isOn: seasonal.isOn).start()
        NoveltyScore(in: numbers, layout: layout, targets: targets.count).startResidual()
    }

    /// A state of format 8 (`earlier`, in `old`'s layout) in this format's layout (`numbers`):
    /// format 9 dropped the novelty's span of 5 samples. Its other spans keep their smoothed
    /// values and ranges, so the novelty goes on as it was; the regions before and after it are
    /// the same in both formats, and those formats 10 to 12 added after them start as new.
    func newNoveltySpans(from earlier: UnsafeMutablePointer<Double>, layout old: ForecasterLayout, into numbers: UnsafeMutablePointer<Double>) {
        let k = targets.count, oldPerTarget = 2 + 3 * NoveltyScore.formatEightSpans.count
        numbers.update(from: earlier, count: layout.noveltyHistory)
        numbers[layout.noveltyHistory] = earlier[old.noveltyHistory]
        for j in 0..<k {
            let from = earlier + old.noveltyHistory + 1 + oldPerTarget * j
            let to = numbers + layout.noveltyHistory + 1 + NoveltyScore.perTarget * j
            to.update(from: from, count: 2)
            for (i, span) in NoveltyScore.spans.enumerated() {
                let was = NoveltyScore.formatEightSpans.firstIndex(of: span)!
                (to + 2 + 3 * i).update(from: from + 2 + 3 * was, count: 3)
            }
        }
        let after = layout.noveltyHistory + NoveltyScore.count(targets: k)
        let oldAfter = old.noveltyHistory + NoveltyScore.count(targets: k, format: old.format)
        (numbers + after).update(from: earlier + oldAfter, count: old.count - oldAfter)
        let fresh = after + old.count - oldAfter
        (numbers + fresh).update(repeating: 0, count: layout.count - fresh)
    }

    /// A forecaster around `trainer`, a network that learned before there was a forecaster
    /// around it (a record of format 1). The network goes on as it was; the other parts start
    /// from the samples in its window, as a new forecaster would have after watching them:
    /// the smoothing expert's level is the latest value, the linear model has the latest values
    /// for its lags (its weights start at zero), and the forecasts the next samples resolve are
    /// persistence's for every expert and without a band, so that the combination learns
    /// nothing from them while the bands, drift and the combination's error scale take their
    /// first errors from them.
    public convenience init(continuing trainer: OnlineTrainer<Float>) {
        self.init(trainer: trainer)
        let n = trainer.counters.samples
        guard n > 0 else { return }
        let k = targets.count, oldest = max(0, n - trainer.ringRows)
        for m in max(0, n - horizon)..<n {
            let x = trainer.valueRow(max(m, oldest)), made = history.made(at: m)
            for out in 0..<outputs {
                let value = Double(x[targets[out % k]])
                for e in Expert.allCases { made[e, output: out] = value }
                made[combined: out] = value
                made[halfWidth: out] = .nan
                made[scale: out] = 0
            }
        }
        let latest = trainer.valueRow(n - 1)
        for j in 0..<k { smoothing.observe(Double(latest[targets[j]]), target: j, first: true) }
        if linear.isOn {
            // Samples older than the window repeat its oldest: no change, rather than a made-up one.
            for m in max(0, n - lags - 1)..<n { linear.remember(trainer.valueRow(max(m, oldest)), sample: m) }
        }
        for out in 0..<outputs { published[out] = trainer.forecast[out] }
        newFormatThreeRegions(in: state, layout: layout)
    }
}

extension ForecasterCounters {
    /// The four counters as `Forecaster.writeState` writes them, in order.
    init(reading r: inout StateReader) {
        self.init()
        drifts = Int(r.get(Int64.self))
        scored = Int(r.get(Int64.self))
        banded = Int(r.get(Int64.self))
        covered = Int(r.get(Int64.self))
    }
}
