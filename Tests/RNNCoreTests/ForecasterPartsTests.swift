@testable import RNNCore
import RealModule
import Testing

/// Each part of the forecaster alone, on buffers the test allocates: what its algorithm
/// promises, without a network or a stream around it. (ForecasterTests and
/// ForecasterFixtureTests check the parts together.)
@Suite(.timeLimit(.minutes(1)))
struct ForecasterPartsTests {
    /// `count` zeroed numbers; the caller deallocates them.
    static func zeroed<S: RNNScalar>(_ count: Int) -> UnsafeMutablePointer<S> { allocateZeroed(count) }

    // MARK: - LinearExpert

    /// Runs `body` on a linear expert of one input without a calendar (D = L + 2 features) over
    /// buffers of its own.
    static func withLinear(lags: Int, rows: Int = 2, _ body: (LinearExpert) -> Void) {
        let d = lags + 2
        let state: UnsafeMutablePointer<Double> = zeroed(d * d + d + rows * d + lags + 1)
        let gain: UnsafeMutablePointer<Double> = zeroed(d)
        defer {
            state.deallocate()
            gain.deallocate()
        }
        let expert = LinearExpert(
            covariance: state, weights: state + d * d, featureRing: state + d * d + d,
            valueRing: state + d * d + d + rows * d, gain: gain,
            inputs: 1, lags: lags, features: d, outputs: 1, targets: 1, rows: rows, calendar: false)
        expert.resetCovariance()
        body(expert)
    }

    @Test func recursiveLeastSquaresRecoversALinearRelation() {
        // Targets exactly w · φ on random features: the weights converge to w (the initial
        // covariance's pull towards 0 fades as λⁿ), and the covariance's trace never exceeds its
        // initial value D.
        Self.withLinear(lags: 2) { expert in
            let d = expert.features
            let truth = [0.5, -1.25, 2.0, 0.75]
            var rng = SplitMix64(seed: 1)
            for m in 0..<3000 {
                let phi = expert.features(of: m)
                for i in 0..<d { phi[i] = rng.normal() }
                let target = (0..<d).map { truth[$0] * phi[$0] }.reduce(0, +)
                expert.learn(madeAt: m, step: 1) { _ in target }
                let trace = (0..<d).map { expert.covariance[$0 * d + $0] }.reduce(0, +)
                if trace > Double(d) * (1 + 1e-12) { Issue.record("sample \(m): trace \(trace)") }
            }
            for i in 0..<d {
                #expect(abs(expert.weights[i] - truth[i]) < 1e-3, "weight \(i): \(expert.weights[i])")
            }
            // And it forecasts the relation on features it has not learned from.
            let phi = expert.features(of: 3000)
            for i in 0..<d { phi[i] = rng.normal() }
            let expected = (0..<d).map { truth[$0] * phi[$0] }.reduce(0, +)
            #expect(abs(expert.change(output: 0, sample: 3000) - expected) < 1e-2)
        }
    }

    @Test func theFeaturesAreTheLatestChangesInTheUnitOfNowThenTheLevelAndOne() {
        Self.withLinear(lags: 2, rows: 3) { expert in
            let normalizer = RunningNormalizer(channels: 1, normalization: .none)
            for (n, v) in [Float(1), 3, 6].enumerated() {
                withUnsafePointer(to: v) { expert.remember($0, sample: n) }
                expert.prepareFeatures(sample: n, time: nil, normalizer: normalizer) { _ in 0.5 }
            }
            // Sample 0 has no change yet, sample 1 one; sample 2 both, each over the unit now.
            func phi(_ n: Int) -> [Double] { Array(UnsafeBufferPointer(start: expert.features(of: n), count: 4)) }
            #expect(phi(0) == [0, 0, 1, 1])
            #expect(phi(1) == [4, 0, 3, 1])
            #expect(phi(2) == [6, 4, 6, 1])
        }
    }

    // MARK: - ConformalBands

    /// Runs `body` on the bands of `o` outputs (one unless given; the first at step 1, the others
    /// beyond it) at `coverage` and their windows, over buffers of their own.
    static func withBands(coverage: Double, outputs o: Int = 1, _ body: (ConformalBands) -> Void) {
        let state: UnsafeMutablePointer<Double> = zeroed(4 * o)
        let windows: UnsafeMutablePointer<Float> = zeroed(ConformalBands.windowsCount(outputs: o))
        defer {
            state.deallocate()
            windows.deallocate()
        }
        let bands = ConformalBands(
            levels: state, scales: state + o, inserted: state + 2 * o, debts: state + 3 * o, windows: windows, outputs: o,
            targets: 1, coverage: coverage)
        bands.start()
        body(bands)
    }

    @Test func theBandsLevelStepsAfterMissesAndHits() {
        Self.withBands(coverage: 0.9) { bands in
            #expect(bands.levels[0] == 1 - 0.9)
            // Calibration: scores 1 ... 100 at scale 1, no band yet to hit or miss.
            for i in 1...100 {
                #expect(bands.halfWidth(output: 0).isNaN == (i - 1 < ConformalBands.warmup))
                #expect(bands.resolve(output: 0, error: Double(i), halfWidth: .nan, scale: 1) == nil)
            }
            #expect(bands.levels[0] == 1 - 0.9, "no band, no step")
            func quantile() -> Double { bands.halfWidth(output: 0) / bands.scale(output: 0) }
            let start = quantile()
            // Misses (scale 0: the score stays out of the window) lower α_t by γ(1 − α): wider bands.
            for _ in 0..<20 {
                let before = bands.levels[0]
                #expect(bands.resolve(output: 0, error: 1e3, halfWidth: 1, scale: 0) == false)
                #expect(abs(bands.levels[0] - (before + ConformalBands.step * (0.1 - 1))) < 1e-15)
            }
            let missed = quantile()
            #expect(missed > start, "\(missed) after misses, \(start) before")
            // Hits raise it by γα: narrower again.
            for _ in 0..<200 {
                let before = bands.levels[0]
                #expect(bands.resolve(output: 0, error: 0, halfWidth: 1, scale: 0) == true)
                #expect(abs(bands.levels[0] - (before + ConformalBands.step * 0.1)) < 1e-15)
            }
            #expect(quantile() < missed)
        }
    }

    @Test func beyondStepOneTheLevelStopsHalfAnAlphaBelowZeroAndOwesTheRest() {
        Self.withBands(coverage: 0.9, outputs: 2) { bands in
            // Two outputs, step 1 and step 2, missing together 40 times: γ(1 − α) = 0.0045 each
            // time takes step 1's level from 0.1 to −0.08; step 2's stops at −α/2 = −0.05 and
            // owes the other 0.03.
            for _ in 0..<40 {
                #expect(bands.resolve(output: 0, error: 1e3, halfWidth: 1, scale: 0) == false)
                #expect(bands.resolve(output: 1, error: 1e3, halfWidth: 1, scale: 0) == false)
            }
            #expect(abs(bands.levels[0] - (0.1 - 40 * ConformalBands.step * 0.9)) < 1e-12)
            #expect(abs(bands.levels[1] - -ConformalBands.windup * 0.1) < 1e-15)
            #expect(abs(bands.debts[1] - 0.03) < 1e-12 && bands.debts[0] == 0)
            // Hits (γα = 0.0005 each) raise both; step 2 pays 0.1% of its debt with each, so
            // its level less its debt is step 1's level all along, and its band narrows sooner.
            for i in 0..<300 {
                #expect(bands.resolve(output: 0, error: 0, halfWidth: 1, scale: 0) == true)
                #expect(bands.resolve(output: 1, error: 0, halfWidth: 1, scale: 0) == true)
                #expect(abs(bands.levels[1] - bands.debts[1] - bands.levels[0]) < 1e-12, "hit \(i)")
            }
            #expect(abs(bands.levels[0] - 0.07) < 1e-12)
            let paid = 0.03 * (1 - Double.pow(1 - ConformalBands.repay, 300))
            #expect(abs(bands.debts[1] - (0.03 - paid)) < 1e-12 && bands.levels[1] > 0.09)
        }
    }

    @Test func theWindowKeepsTheLatestScoresSortedTheNewestFarAhead() {
        Self.withBands(coverage: 0.8, outputs: 2) { bands in
            let w = ConformalBands.window, far = ConformalBands.farWindow
            var rng = SplitMix64(seed: 7)
            var latest: [Float] = []
            func sorted(_ o: Int, _ m: Int) -> [Float] { Array(UnsafeBufferPointer(start: bands.windows + (2 * o + 1) * w, count: m)) }
            for _ in 0..<(3 * w + 17) {
                let score = Float(abs(rng.normal()))
                _ = bands.resolve(output: 0, error: Double(score), halfWidth: .nan, scale: 1)
                _ = bands.resolve(output: 1, error: Double(score), halfWidth: .nan, scale: 1)
                latest.append(score)
            }
            #expect(sorted(0, w) == latest.suffix(w).sorted())
            #expect(sorted(1, far) == latest.suffix(far).sorted(), "beyond step 1, the newest farWindow")
            #expect(bands.inserted[0] == Double(3 * w + 17) && bands.inserted[1] == bands.inserted[0])
            // Both rings hold the latest w in arrival order, so the far window can be sorted again
            // from its ring: a no-op on a window kept this way, the newest farWindow of a full one.
            bands.resortFarWindows()
            #expect(sorted(1, far) == latest.suffix(far).sorted())
            (bands.windows + 3 * w).update(from: bands.windows + w, count: w)  // as a window of w kept them
            bands.resortFarWindows()
            #expect(sorted(1, far) == latest.suffix(far).sorted())
            #expect(sorted(0, w) == latest.suffix(w).sorted(), "step 1 is left as it is")
        }
    }

    @Test func beyondStepOneTheScaleIsSteadier() {
        Self.withBands(coverage: 0.9, outputs: 2) { bands in
            for o in 0..<2 { _ = bands.resolve(output: o, error: 1, halfWidth: .nan, scale: 1) }
            for o in 0..<2 { _ = bands.resolve(output: o, error: 3, halfWidth: .nan, scale: 1) }
            #expect(abs(bands.scale(output: 0) - (1 + 2 * (1 - ConformalBands.scaleForgetting))) < 1e-15)
            #expect(abs(bands.scale(output: 1) - (1 + 2 * (1 - ConformalBands.farScaleForgetting))) < 1e-15)
        }
    }

    @Test func noBandsWithoutCoverage() {
        Self.withBands(coverage: 0) { bands in
            for i in 0..<50 { _ = bands.resolve(output: 0, error: Double(i), halfWidth: .nan, scale: 1) }
            #expect(bands.halfWidth(output: 0).isNaN)
        }
    }

    // MARK: - DriftDetector

    /// Page–Hinkley fed the absolute errors `errors` (one target); the samples at which it fired.
    static func drifts(_ errors: [Double]) -> (at: [Int], boost: Double) {
        let state: UnsafeMutablePointer<Double> = zeroed(1 + DriftDetector.testCount)
        defer { state.deallocate() }
        let detector = DriftDetector(errorScales: state, test: state + 1)
        var fired: [Int] = []
        for (n, e) in errors.enumerated() {
            if let u = detector.observe(error: e, target: 0), detector.watch(u) { fired.append(n) }
        }
        return (fired, detector.learningRateBoost)
    }

    @Test func pageHinkleyFiresOnAShiftAndNotOnAStationarySignal() {
        var rng = SplitMix64(seed: 3)
        let calm = (0..<6000).map { _ in abs(rng.normal()) }
        #expect(Self.drifts(calm).at.isEmpty, "no false alarm")

        // The errors grow five-fold at 3000 and stay grown: found within a hundred samples.
        let shifted = (0..<4000).map { n in abs(rng.normal()) * (n < 3000 ? 1 : 5) }
        let (at, boost) = Self.drifts(shifted)
        #expect(at.first.map { $0 >= 3000 && $0 < 3100 } == true, "fired at \(at)")
        #expect(boost > 1 && boost <= DriftDetector.boost)

        // One wild error (an anomaly) is bounded: it cannot raise a drift on its own.
        var wild = calm
        wild[3000] = 1e12
        #expect(Self.drifts(wild).at.isEmpty)
    }

    @Test func theBoostEasesBackInAStraightLine() {
        let state: UnsafeMutablePointer<Double> = Self.zeroed(1 + DriftDetector.testCount)
        defer { state.deallocate() }
        let detector = DriftDetector(errorScales: state, test: state + 1)
        #expect(detector.learningRateBoost == 1)
        for _ in 0..<300 { #expect(!detector.watch(1)) }
        var n = 0
        while !detector.watch(DriftDetector.signalBound), n < 1000 { n += 1 }
        #expect(n < 20)
        #expect(detector.learningRateBoost == DriftDetector.boost)
        detector.easeBoost()
        #expect(abs(detector.learningRateBoost - (1 + (DriftDetector.boost - 1) * 499 / 500)) < 1e-12)
        for _ in 0..<DriftDetector.boostSamples { detector.easeBoost() }
        #expect(detector.learningRateBoost == 1)
    }

    // MARK: - Combination

    @Test func theWeightsMoveTowardTheBetterExpert() {
        let state: UnsafeMutablePointer<Double> = Self.zeroed(Expert.count + 1)
        defer { state.deallocate() }
        let combination = Combination(weights: state, errorScales: state + Expert.count, outputs: 1)
        combination.start { _ in true }
        #expect((0..<Expert.count).allSatisfy { combination.weight($0, output: 0) == 1 / Double(Expert.count) })
        // The linear expert is exact; the others miss by unit noise.
        var rng = SplitMix64(seed: 5)
        var f = [Double](repeating: 0, count: Expert.count)
        for _ in 0..<2000 {
            let y = 10 * rng.normal()
            for e in f.indices { f[e] = e == Expert.linear.rawValue ? y : y + rng.normal() }
            f.withUnsafeBufferPointer { p in
                let forecasts = ExpertForecasts(base: p.baseAddress!, stride: 1)
                let combined = combination.combine(output: 0, forecasts)
                combination.learn(output: 0, forecasts: forecasts, combined: combined, actual: y)
            }
        }
        let w = (0..<Expert.count).map { combination.weight($0, output: 0) }
        #expect(w[Expert.linear.rawValue] > 0.95, "weights \(w)")
        #expect(w.allSatisfy { $0 >= Combination.weightFloor / 2 } && abs(w.reduce(0, +) - 1) < 1e-12)
    }

    @Test func anExpertLeftOutKeepsWeightZeroAndAWildForecastChangesNothing() {
        let state: UnsafeMutablePointer<Double> = Self.zeroed(Expert.count + 1)
        defer { state.deallocate() }
        let combination = Combination(weights: state, errorScales: state + Expert.count, outputs: 1)
        combination.start { $0 != .linear && $0 != .direct && $0 != .seasonal }
        #expect(combination.weight(Expert.persistence.rawValue, output: 0) == 1.0 / 3)
        var f = [1.0, 2.0, 0.0, 3.0, -7.0, 9.0]
        f.withUnsafeBufferPointer { p in
            let forecasts = ExpertForecasts(base: p.baseAddress!, stride: 1)
            for _ in 0..<100 {
                let combined = combination.combine(output: 0, forecasts)
                combination.learn(output: 0, forecasts: forecasts, combined: combined, actual: 1.5)
            }
        }
        #expect(combination.weight(Expert.linear.rawValue, output: 0) == 0)
        #expect(combination.weight(Expert.direct.rawValue, output: 0) == 0)
        #expect(combination.weight(Expert.seasonal.rawValue, output: 0) == 0)
        let before = (0..<Expert.count).map { combination.weight($0, output: 0) }
        f[Expert.network.rawValue] = .infinity
        f.withUnsafeBufferPointer { p in
            let forecasts = ExpertForecasts(base: p.baseAddress!, stride: 1)
            combination.learn(output: 0, forecasts: forecasts, combined: 1.5, actual: 1.5)
        }
        #expect((0..<Expert.count).map { combination.weight($0, output: 0) } == before)
    }

    // MARK: - SmoothingExpert, AnomalyScore, RollingFigures, ForecastHistory

    @Test func theSmoothedLevelStartsAtTheFirstValueAndDecaysGeometrically() {
        let levels: UnsafeMutablePointer<Double> = Self.zeroed(2)
        defer { levels.deallocate() }
        let smoothing = SmoothingExpert(levels: levels)
        smoothing.observe(10, target: 1, first: true)
        #expect(smoothing.forecast(target: 1) == 10)
        var expected = 10.0
        for _ in 1...30 {
            smoothing.observe(0, target: 1, first: false)
            expected *= 1 - SmoothingExpert.factor
            #expect(abs(smoothing.forecast(target: 1) - expected) < 1e-12)
        }
        #expect(smoothing.forecast(target: 0) == 0, "targets apart")
    }

    /// A new stream's anomaly score (started) over `targets` targets, on buffers of its own.
    static func anomalyScore(targets: Int) -> AnomalyScore {
        let a = AnomalyScore(
            latest: zeroed(AnomalyScore.count), base: zeroed(AnomalyScore.historyCount(targets: targets)), routine: zeroed(targets),
            novelty: noveltyScore(targets: targets))
        a.start()
        return a
    }

    static func free(_ a: AnomalyScore) {
        a.latest.deallocate()
        a.base.deallocate()
        a.routine.deallocate()
        free(a.novelty)
    }

    /// A novelty score over `targets` targets, on buffers of its own.
    static func noveltyScore(targets: Int) -> NoveltyScore {
        NoveltyScore(
            base: zeroed(NoveltyScore.count(targets: targets)), residual: zeroed(NoveltyScore.residualCount(targets: targets)),
            profile: zeroed(NoveltyScore.profileCount(targets: targets)), drift: zeroed(NoveltyScore.driftCount(targets: targets)),
            shape: zeroed(NoveltyScore.shapeCount(targets: targets)), targets: targets)
    }

    static func free(_ v: NoveltyScore) {
        v.base.deallocate()
        v.residual.deallocate()
        v.profile.base.deallocate()
        v.drift.deallocate()
        v.shape.deallocate()
    }

    static func isPlausible(_ v: NoveltyScore) -> Bool {
        NoveltyScore.isPlausible(v.base, residual: v.residual, profile: v.profile.base, drift: v.drift, shape: v.shape, targets: v.targets)
    }

    @Test func theAnomalyScoreJudgesAnErrorAgainstTheStreamsOwnHistory() {
        let anomaly = Self.anomalyScore(targets: 2)
        defer { Self.free(anomaly) }
        #expect(anomaly.value == nil)
        // A noisy history: target 0 misses its band by up to 3 times now and then.
        var noise = ForecasterTests.Noise(seed: 5)
        for n in 0..<400 {
            let e0 = abs(noise.next()) * (n % 7 == 0 ? 3 : 1), e1 = 0.5
            let s0 = anomaly.observe(target: 0, error: e0, halfWidth: 1, spread: 1)
            let s1 = anomaly.observe(target: 1, error: e1, halfWidth: 1, spread: 1)
            if n < AnomalyScore.targetWarmup { #expect(s0 == 0 && s1 == 0, "no score before the target's warm-up") }
            anomaly.publish(known: true)
        }
        let usual = anomaly.value!
        #expect(usual < AnomalyScore.surpriseAlertLevel, "a usual miss: \(usual)")
        // Target 1 never missed: a miss by a hair is not a departure (its misses' deviation is
        // taken as at least `deviationFloor`, else this would score 1), a miss of five times the
        // band is.
        _ = anomaly.observe(target: 0, error: 0.5, halfWidth: 1, spread: 1)
        let hair = anomaly.observe(target: 1, error: 1.2, halfWidth: 1, spread: 1)!
        #expect(hair > 0 && hair < 0.1, "a miss by 20%: \(hair)")
        let departure = anomaly.observe(target: 1, error: 5, halfWidth: 1, spread: 1)!
        #expect(departure >= AnomalyScore.surpriseAlertLevel, "a miss by 5 times: \(departure)")
        // The error's scale is at least 5% of the spread: errors below it are not misses even
        // when the band has no width (a series predicted almost exactly).
        let exact = Self.anomalyScore(targets: 1)
        defer { Self.free(exact) }
        for _ in 0..<150 { #expect(exact.observe(target: 0, error: 0.01, halfWidth: 0, spread: 1) == 0) }
        #expect(exact.observe(target: 0, error: 0.04, halfWidth: 0, spread: 1) == 0)
        #expect(exact.observe(target: 0, error: 0.5, halfWidth: 0, spread: 1)! >= NoveltyScore.floor)
        // Without a band, no score.
        #expect(anomaly.observe(target: 0, error: 1, halfWidth: .nan, spread: 1) == nil)
    }

    @Test func aLargerMissScoresHigherAndOneIncidentAlertsOnce() {
        func history() -> AnomalyScore {
            let a = Self.anomalyScore(targets: 1)
            var noise = ForecasterTests.Noise(seed: 6)
            for n in 0..<500 {
                a.observe(target: 0, error: abs(noise.next()) * (n % 5 == 0 ? 2.5 : 1), halfWidth: 1.6, spread: 1)
                a.publish(known: true)
            }
            return a
        }
        var scores: [Double] = []
        for error in [2.0, 4.0, 8.0, 1000.0] {
            let a = history()
            defer { Self.free(a) }
            scores.append(a.observe(target: 0, error: error, halfWidth: 1.6, spread: 1)!)
        }
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0 <= $1 }, "\(scores)")
        #expect(scores.last == 1)
        // An alert, then the quiet period: the next quietSamples samples score 0, then it re-arms.
        let a = history()
        defer { Self.free(a) }
        a.observe(target: 0, error: 1000, halfWidth: 1.6, spread: 1)
        a.publish(known: true)
        #expect(a.value == 1)
        for _ in 0..<AnomalyScore.quietSamples {
            a.observe(target: 0, error: 1000, halfWidth: 1.6, spread: 1)
            a.publish(known: true)
            #expect(a.value == 0 && a.value(target: 0) == 0)
        }
        a.observe(target: 0, error: 1e6, halfWidth: 1.6, spread: 1)
        a.publish(known: true)
        #expect(a.value! > 0, "re-armed after the quiet period")
        // An unknown sample is not published and does not use up the quiet period.
        a.clear()
        a.publish(known: false)
        #expect(a.value == nil)
        #expect(AnomalyScore.isPlausible(a.base, routine: a.routine, targets: 1))
        a.base[0] = -1
        #expect(!AnomalyScore.isPlausible(a.base, routine: a.routine, targets: 1))
    }

    @Test func aMissThatRecursIsRoutineUntilItCalmsDown() {
        // A daily counter's reset at midnight (every 288 five-minute samples), a miss the step-1
        // forecast cannot foresee, on a stream that otherwise misses as usual.
        let a = Self.anomalyScore(targets: 1)
        defer { Self.free(a) }
        var noise = ForecasterTests.Noise(seed: 7)
        var alerts: [Int] = []
        func sample(_ n: Int, reset: Bool) {
            a.observe(target: 0, error: reset ? 50 : abs(noise.next()), halfWidth: 1.6, spread: 1)
            a.publish(known: true)
            if a.value! >= AnomalyScore.surpriseAlertLevel { alerts.append(n) }
        }
        for n in 0..<(288 * 14) { sample(n, reset: n > 0 && n % 288 == 0) }
        // Its first five resets alert (the fourth earlier one forgotten a little by the fifth),
        // the next eight are routine: at most the ceiling, below the alert level.
        #expect(alerts == [288, 576, 864, 1152, 1440], "\(alerts)")
        #expect(a.routine[0] > AnomalyScore.routineAlerts)
        #expect(a.value(target: 0)! <= AnomalyScore.routineCeiling)
        // Calm for three weeks of samples: the routine is forgotten, and a reset alerts again.
        for n in 1...6000 { sample(n, reset: false) }
        #expect(a.routine[0] < AnomalyScore.routineAlerts - 1)
        sample(0, reset: true)
        #expect(a.value! >= AnomalyScore.surpriseAlertLevel)
        #expect(AnomalyScore.isPlausible(a.base, routine: a.routine, targets: 1))
        a.routine[0] = -1
        #expect(!AnomalyScore.isPlausible(a.base, routine: a.routine, targets: 1))
        a.routine[0] = .nan
        #expect(!AnomalyScore.isPlausible(a.base, routine: a.routine, targets: 1))
    }

    @Test func anAlertOfTheNoveltysRankQuietsBothHalves() {
        let a = Self.anomalyScore(targets: 1)
        defer { Self.free(a) }
        var noise = ForecasterTests.Noise(seed: 8)
        func sample(value: Double, error: Double) -> Double {
            a.observe(target: 0, value: value, learned: value, at: nil, interval: nil)
            a.observe(target: 0, error: error, halfWidth: 1.6, spread: 1)
            a.publish(known: true)
            return a.value!
        }
        func usual(_ n: Int) {
            for i in 0..<n { _ = sample(value: Double.sin(Double(i) * 0.3), error: abs(noise.next())) }
        }
        usual(400)
        // A lesser surprise alerts and leaves the novelty free.
        let lesser = sample(value: 0, error: 10)
        #expect(lesser >= AnomalyScore.surpriseAlertLevel && lesser < NoveltyScore.floor, "\(lesser)")
        usual(30)
        #expect(sample(value: 5, error: 0.5) >= NoveltyScore.floor)
        usual(AnomalyScore.quietSamples)
        // A novelty, then 30 samples later a miss that alerts as a surprise on its own: the same
        // incident, quiet.
        #expect(sample(value: 50, error: 0.5) >= NoveltyScore.floor)
        usual(30)
        #expect(sample(value: 0, error: 1e4) == 0)
        usual(AnomalyScore.quietSamples)
        // A surprise of the novelty's rank, then a value beyond every one seen: quiet too.
        #expect(sample(value: 0, error: 1e6) >= NoveltyScore.floor)
        usual(30)
        #expect(sample(value: 500, error: 0.5) == 0)
    }

    @Test func theSurpriseMapsTailProbabilitiesOntoOneScale() {
        // 0.9 L / 24 below 24 decades, then from the novelty's floor to 1 at 48 decades.
        #expect(AnomalyScore.surprise(decades: 0) == 0)
        #expect(abs(AnomalyScore.surprise(decades: 12) - AnomalyScore.surpriseAlertLevel) < 1e-12)
        #expect(AnomalyScore.surprise(decades: 23.9) < 0.9)
        #expect(AnomalyScore.surprise(decades: 24) == NoveltyScore.floor)
        #expect(AnomalyScore.surprise(decades: 48) == 1 && AnomalyScore.surprise(decades: 1000) == 1)
    }

    /// A novelty score over one target, on a buffer of its own, after `values`.
    static func novelty(after values: [Double]) -> NoveltyScore {
        let v = noveltyScore(targets: 1)
        v.start()
        for x in values {
            v.observe(target: 0, value: x)
            v.quieten()
        }
        return v
    }

    /// 400 values of a sine between -1 and 1.
    static let sine = (0..<400).map { Double.sin(Double($0) * 0.3) }

    @Test func aValueBeyondEveryValueSeenIsNovel() {
        // Not before the warm-up, however far.
        let early = Self.novelty(after: Array(Self.sine[..<Int(NoveltyScore.warmup - 1)]))
        defer { Self.free(early) }
        early.observe(target: 0, value: 1e6)
        #expect(early.value(target: 0) == 0)
        // Within the range or the margin: not novel; past it: from the floor, 1 a width past.
        func score(_ x: Double) -> Double {
            let v = Self.novelty(after: Self.sine)
            defer { Self.free(v) }
            v.observe(target: 0, value: x)
            return v.value(target: 0)
        }
        #expect(score(0.5) == 0 && score(-0.5) == 0)
        #expect(score(1.04) == 0, "within the margin (4% of the width 2 is 0.08)")
        let past = score(1.1)
        #expect(past > NoveltyScore.floor && past < 1, "\(past)")
        #expect(score(-1.1) > NoveltyScore.floor, "either side")
        #expect(score(3.5) == 1 && score(-1e9) == 1)
        // A slow departure no single value shows: the smoothed spans see it.
        var flagged = false
        let slow = Self.novelty(after: Self.sine)
        defer { Self.free(slow) }
        for i in 0..<60 {
            // Hovering at the top of the range, never above it: the mean of 20 or 60 samples has
            // never been this high.
            slow.observe(target: 0, value: i % 2 == 0 ? 0.99 : 0.8)
            flagged = flagged || slow.value(target: 0) > 0
        }
        #expect(flagged, "the smoothed values went past their range")
    }

    @Test func aSlowDriftIntoNewValuesIsNovelOnce() {
        // After the sine (-1 to 1), a steady fall of 0.01 a sample: no step passes the value's
        // range by the margin (the range follows it), but the longest span's smoothed value lies
        // below its range on every sample from some point on, and `driftRun` samples later, far
        // past where that end stood, the fall is a drift: novel at the floor, once however long
        // it goes on.
        let v = Self.novelty(after: Self.sine)
        defer { Self.free(v) }
        var novel: [Int: Double] = [:]
        for k in 0..<600 {
            v.observe(target: 0, value: -0.01 * Double(k))
            v.quieten()
            if v.value(target: 0) > 0 { novel[k] = v.value(target: 0) }
        }
        #expect(novel.count == 1 && novel.values.allSatisfy { $0 == NoveltyScore.floor }, "\(novel)")
        #expect(novel.keys.allSatisfy { $0 >= Int(NoveltyScore.driftRun) }, "not before a run's length: \(novel)")
        #expect(v.drift[0] <= -NoveltyScore.driftRun && v.drift[2] == 0, "the low side's run alerted, the high side has none")
        #expect(Self.isPlausible(v))
        v.drift[0] = 0.5
        #expect(!Self.isPlausible(v), "a run is a whole number of samples")
        // Held just past the longest span's lowest: its smoothed value creeps past that end on
        // every sample (the forgetting moves the end in), a run as long as the hold, but never
        // the reach past where the end stood: no drift (a disk idle at 0, a CPU pinned at 100).
        let held = Self.novelty(after: Self.sine)
        defer { Self.free(held) }
        // base: the quiet count, then the target's latest novelty, its count, and per span (1,
        // 20, 60) the smoothed value, lowest and highest.
        let low = held.base[10], high = held.base[11]
        for _ in 0..<400 {
            held.observe(target: 0, value: low - 0.05 * (high - low))
            held.quieten()
            #expect(held.value(target: 0) == 0)
        }
        #expect(held.drift[0] > 2 * NoveltyScore.driftRun, "a run of \(held.drift[0]) samples, none alerted")
    }

    @Test func aWaveformNeverSeenIsNovelOnce() {
        // After a slow cycle (period 200, -1 to 1: the latest 32 values are a gentle slope), a
        // cycle of period 8 at the same level and amplitude: no value and no mean leaves its
        // range, but the latest values' shape is farther from every remembered one than any shape
        // before. Novel at the floor once, within the first window of the new cycle; then the
        // record takes the new cycle's shapes and the memory holds them: not again.
        let slow = (0..<400).map { Double.sin(2 * Double.pi * Double($0) / 200) }
        let fast = (0..<400).map { Double.sin(2 * Double.pi * Double($0) / 8) }
        func novelties(_ v: NoveltyScore, _ values: [Double]) -> [Int: Double] {
            var novel: [Int: Double] = [:]
            for (k, x) in values.enumerated() {
                v.observe(target: 0, value: x)
                v.quieten()
                if v.value(target: 0) > 0 { novel[k] = v.value(target: 0) }
            }
            return novel
        }
        let v = Self.novelty(after: slow)
        defer { Self.free(v) }
        // 400 values: a shape every 4 from the 32nd on, 93 (the warm-up is 75).
        let record = v.shape[1]
        #expect(v.shape[0] == 400 && v.shape[2] == 93 && record > 0, "\(v.shape[0]), \(v.shape[2]), \(record)")
        let novel = novelties(v, fast)
        #expect(novel.count == 1 && novel.values.allSatisfy { $0 == NoveltyScore.floor }, "\(novel)")
        #expect(novel.keys.allSatisfy { $0 < NoveltyScore.shapeValues }, "\(novel)")
        #expect(v.shape[1] > record && Self.isPlausible(v))
        // Nothing else sees it: the same values into a score whose record is out of reach.
        let blind = Self.novelty(after: slow)
        defer { Self.free(blind) }
        blind.shape[1] = 1e9
        #expect(novelties(blind, fast).isEmpty)
        // A sentinel is a novel value: the shapes around it do not raise the record (its
        // latest values hold it for 32 samples), and the faster cycle after it is as new.
        let w = Self.novelty(after: slow)
        defer { Self.free(w) }
        #expect(novelties(w, [-9999]) == [0: 1])
        #expect(novelties(w, Array(slow[..<200])).isEmpty)
        #expect(w.shape[1] == record, "the record: \(w.shape[1]) against \(record)")
        let after = novelties(w, fast)
        #expect(after.count == 1 && after.values.allSatisfy { $0 == NoveltyScore.floor }, "\(after)")
        // The counts are whole numbers, the slot one of the memory's.
        w.shape[3] = Double(NoveltyScore.shapeMemory)
        #expect(!Self.isPlausible(w))
        w.shape[3] = 0.5
        #expect(!Self.isPlausible(w))
    }

    @Test func aNoveltyAlertsOnceAndASentinelDoesNotBlindTheScore() {
        let v = Self.novelty(after: Self.sine)
        defer { Self.free(v) }
        // A sentinel: novel; then the quiet period, then re-armed.
        v.observe(target: 0, value: -9999)
        v.quieten()
        #expect(v.value(target: 0) == 1)
        for _ in 0..<NoveltyScore.quietSamples {
            v.observe(target: 0, value: 50)
            v.quieten()
            #expect(v.value(target: 0) == 0)
        }
        // The sentinel widened the value's range by at most its width (2), and the smoothed
        // values took it bounded to a width beyond that range: nothing learned went near it,
        // and the range's upper side is watched as before.
        let w = Self.noveltyScore(targets: 1)
        defer { Self.free(w) }
        w.start()
        for x in Self.sine + [-9999] + Self.sine { w.observe(target: 0, value: x) }
        #expect((0..<NoveltyScore.count(targets: 1)).allSatisfy { w.base[$0] > -5 }, "the sentinel's trace is bounded")
        #expect(w.base[5] - w.base[4] < 4.1, "the value's range: \(w.base[4]) ... \(w.base[5])")
        w.observe(target: 0, value: 1.2)
        #expect(w.value(target: 0) > 0, "the upper side after a sentinel below")
        #expect(Self.isPlausible(w))
        w.base[3] = .nan
        #expect(!Self.isPlausible(w))
        // A target that has held one value has no range to judge by: its first change is the
        // surprise's to judge, and widens the range.
        let flat = Self.novelty(after: [Double](repeating: 20, count: 400))
        defer { Self.free(flat) }
        flat.observe(target: 0, value: 21)
        #expect(flat.value(target: 0) == 0)
        flat.observe(target: 0, value: 30)
        #expect(flat.value(target: 0) == 1, "past the range [20, 21]")
    }

    @Test func aFarValueTheGateHeldBackStaysOutOfTheRangeUntilItIsRoutine() {
        let a = Self.anomalyScore(targets: 1)
        defer { Self.free(a) }
        var noise = ForecasterTests.Noise(seed: 9)
        var n = 0
        // One sample: `value` as it came, `learned` as the outlier gate passed it on.
        func sample(_ value: Double, learned: Double? = nil) -> Double {
            a.observe(target: 0, value: value, learned: learned ?? value, at: nil, interval: nil)
            a.observe(target: 0, error: abs(noise.next()), halfWidth: 1.6, spread: 1)
            a.publish(known: true)
            n += 1
            return a.value!
        }
        func usual(_ count: Int) { for _ in 0..<count { _ = sample(Double.sin(Double(n) * 0.3)) } }
        // The value's range, lowest and highest (span 1's).
        func range() -> (Double, Double) { (a.novelty.base[4], a.novelty.base[5]) }
        usual(400)
        let before = range()
        // A sentinel the gate held back: an incident, and the range stays the stream's.
        #expect(sample(65535, learned: 0) == 1)
        #expect(abs(range().0 - before.0) < 1e-3 && abs(range().1 - before.1) < 1e-3, "\(range()) after, \(before) before")
        #expect(a.routine[0] > 0.99 && a.routine[0] <= 1, "one alert: \(a.routine[0])")
        usual(NoveltyScore.quietSamples)
        // So a real new high after it is still novel (a range widened by the sentinel, even by
        // one width a sample, would hold 1.5).
        #expect(sample(1.5) >= NoveltyScore.floor)
        usual(NoveltyScore.quietSamples)
        // A held-back spike every night (288 samples) alerts until the target's alerts are routine
        // (more than `routineAlerts`, forgotten at 1/memory a sample: the sixth night's); the range
        // takes that one whole. The next night the smoothed spans, which took the spike bounded to
        // a width beyond the range as it was, see it whole for the first time: one alert more.
        // From then on the spike is inside every range.
        var alerts: [Int] = []
        for night in 1...8 {
            usual(287)
            if sample(500, learned: 1) >= NoveltyScore.floor { alerts.append(night) }
        }
        #expect(alerts == [1, 2, 3, 4, 5, 6, 7], "\(alerts)")
        #expect(range().1 >= 500 * (1 - 1e-3), "\(range())")
        #expect(AnomalyScore.isPlausible(a.base, routine: a.routine, targets: 1))
    }

    @Test func aDepartureForTheTimeOfDayIsNovelOnceTheResidualHasWarmedUp() {
        // A daily cycle between -1 and 1 (with a little deterministic noise); on day `day` the
        // cycle stops at 0 for the 6 hours around its peak: inside every value seen, so the value's
        // own spans see nothing; off the time of day, which the residual against the day-and-week
        // profile sees once it has 300 residuals over a day. With `setBack`, the clock goes back a
        // week after two days (to the same times of day and week), which starts the day over.
        let t0 = 1_700_000_000.0
        func run(perDay: Int, flatDay day: Int, timed: Bool, setBack: Bool = false) -> (novel: [Int], flat: Range<Int>) {
            let interval = 86_400 / Double(perDay), back = setBack ? 2 * perDay : Int.max
            let v = Self.noveltyScore(targets: 1)
            defer { Self.free(v) }
            v.start()
            let flat = (day * perDay + perDay / 8)..<(day * perDay + 3 * perDay / 8)
            var novel: [Int] = []
            for k in 0..<((day + 1) * perDay) {
                let x = flat.contains(k) ? 0 : Double.sin(2 * Double.pi * Double(k) / Double(perDay)) + 0.05 * Double.sin(Double(k) * 1.7)
                let time = t0 + Double(k) * interval - (k >= back ? SeasonalExpert.week : 0)
                v.observe(target: 0, value: x, learned: x, time: timed ? time : nil, interval: timed ? interval : nil)
                v.quieten()
                if v.value(target: 0) > 0 { novel.append(k) }
            }
            #expect(Self.isPlausible(v))
            return (novel, flat)
        }
        // 15-minute samples: each in a day bin of its own, so the residuals start on day 1 and
        // 300 of them take until day 4.
        let late = run(perDay: 96, flatDay: 9, timed: true)
        #expect(late.novel.count == 1 && late.novel.allSatisfy(late.flat.contains), "novel at \(late.novel), flat \(late.flat)")
        #expect(run(perDay: 96, flatDay: 9, timed: false).novel.isEmpty, "no time, no profile")
        #expect(run(perDay: 96, flatDay: 3, timed: true).novel.isEmpty, "before 300 residuals")
        // 1-minute samples: five to a day bin, so the residuals start at once and 300 take five
        // hours; the day is what waits. Set back a week after two days, the clock starts it over.
        let minutes = run(perDay: 1440, flatDay: 3, timed: true, setBack: true)
        // Novel at its start, and at its end: in 360 samples the profile learned some of the flat.
        #expect(minutes.novel.first.map(minutes.flat.contains) == true
                && minutes.novel.allSatisfy { $0 >= minutes.flat.lowerBound && $0 <= minutes.flat.upperBound + 60 },
                "novel at \(minutes.novel), flat \(minutes.flat)")
        #expect(run(perDay: 1440, flatDay: 2, timed: true, setBack: true).novel.isEmpty, "within a day of the clock set back")
        let perDay = 96, interval = 900.0
        // A clock set back before the first residual counts the day from there.
        let v = Self.noveltyScore(targets: 1)
        defer { Self.free(v) }
        v.start()
        for k in 0..<(2 * perDay) { v.observe(target: 0, value: 1, learned: 1, time: t0 + Double(k) * interval, interval: interval) }
        #expect(v.residual[1] == t0 + Double(perDay) * interval, "the first residual: the second day's first sample")
        v.observe(target: 0, value: 1, learned: 1, time: t0 - 86_400, interval: interval)
        #expect(v.residual[1] == t0 - 86_400)
    }

    /// `f`'s state as record format `format` (5 to 10) wrote it: the columns of the experts it did
    /// not have (the direct and the seasonal expert's in format 5, the seasonal expert's in 6) taken
    /// out of the combination and the history, the novelty's span of 5 put back (formats 5 to 8),
    /// the regions it did not have taken off the end. `f` must give those experts weight 0.
    static func olderState(_ f: Forecaster, format: Int) -> [UInt8] {
        let bytes = ForecasterTests.state(f)
        let layout = f.layout, old = ForecasterLayout(f.configuration, format: format)
        let own = 8 + f.trainer.stateByteCount + 32
        let numbers: [Double] = bytes.withUnsafeBytes { b in
            (0..<layout.count).map { b.loadUnaligned(fromByteOffset: own + 8 * $0, as: Double.self) }
        }
        precondition((0..<f.outputs).allSatisfy { out in
            (old.experts..<Expert.count).allSatisfy { numbers[layout.combinationWeights + out * Expert.count + $0] == 0 }
        })
        var earlier = Array(numbers[..<layout.combinationWeights])
        for out in 0..<f.outputs {
            let row = layout.combinationWeights + out * Expert.count
            earlier += numbers[row..<(row + old.experts)]
        }
        earlier += numbers[layout.smoothingLevels..<layout.history]
        let o = f.outputs
        for r in 0..<(f.horizon + 1) {
            let row = layout.history + r * (Expert.count + 3) * o
            for column in 0..<(Expert.count + 3) where !(old.experts..<Expert.count).contains(column) {
                earlier += numbers[(row + column * o)..<(row + (column + 1) * o)]
            }
        }
        // From the bands' levels on, the regions are the same size but for the novelty's: formats 5
        // to 8 had a span of 5 samples too, between spans 1 and 20 (here a copy of span 20's
        // numbers: reading drops it).
        var tail = Array(numbers[layout.bandLevels..<layout.noveltyHistory])
        let novelty = layout.noveltyHistory, k = f.targets.count
        tail.append(numbers[novelty])
        for j in 0..<k {
            let s = novelty + 1 + NoveltyScore.perTarget * j
            tail += numbers[s..<(s + 2 + 3)]
            if format < 9 { tail += numbers[(s + 2 + 3)..<(s + 2 + 6)] }
            tail += numbers[(s + 2 + 3)..<(s + NoveltyScore.perTarget)]
        }
        tail += numbers[(novelty + NoveltyScore.count(targets: k))...]
        earlier += tail.prefix(old.count - old.bandLevels)
        precondition(earlier.count == old.count)
        var result = Array(bytes[..<own])
        for v in earlier { withUnsafeBytes(of: v) { result += $0 } }
        result += bytes[(own + 8 * layout.count)...]
        return result
    }

    static func formatFiveState(_ f: Forecaster) -> [UInt8] { olderState(f, format: 5) }

    /// A forecaster of the default configuration that learned the first 600 of `series`, 900
    /// samples of a noisy sine (noise of `seed`).
    static func learnedSine(seed: UInt64) -> (forecaster: Forecaster, series: [Double]) {
        var noise = ForecasterTests.Noise(seed: seed)
        let series = (0..<900).map { Double.sin(Double($0) * 0.3) * 5 + noise.next() }
        let f = Forecaster(configuration: ForecasterTests.configuration())
        ForecasterTests.run(f, Array(series[..<600]))
        return (f, series)
    }

    /// Restores `bytes`, an older format's state of `original` (`learnedSine`), expects its
    /// counters back and, over the last 300 samples of `series`, the same forecasts and bands as
    /// the original's bit for bit (and the same anomaly scores, with `sameAnomalies`); returns the
    /// restored forecaster.
    static func expectCarriesOn(_ original: Forecaster, from bytes: [UInt8], series: [Double], sameAnomalies: Bool = false) throws -> Forecaster {
        let restored = try bytes.withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
        #expect(restored.counters == original.counters)
        let a = ForecasterTests.run(original, Array(series[600...]), from: 600)
        let b = ForecasterTests.run(restored, Array(series[600...]), from: 600)
        for i in a.indices {
            #expect(a[i].forecast.bitPattern == b[i].forecast.bitPattern && a[i].upper.bitPattern == b[i].upper.bitPattern
                    && (!sameAnomalies || a[i].anomaly == b[i].anomaly), "sample \(600 + i)")
        }
        return restored
    }

    @Test func aFormatFiveStateOfOneStepCarriesOnExactly() throws {
        let (original, series) = Self.learnedSine(seed: 12)
        let bytes = Self.formatFiveState(original)
        #expect(bytes.count < original.stateByteCount)
        // One step ahead there is no direct expert: its weight stays 0 and nothing else moved.
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series, sameAnomalies: true)
        #expect(restored.combinationWeights(output: 0)[Expert.direct.rawValue] == 0)
        // The novelty's residual started over at the restore (format 5 had none); it scores
        // after 300 residuals and a day, past the end: the same scores.
        #expect(restored.anomalyScore.novelty.residual[0] == 300 - 24)
    }

    @Test func aFormatFiveStateFarAheadGainsADirectExpertThatEarnsItsWeight() throws {
        // A stream of horizon 3 saved before the direct expert: restored under a configuration
        // with one (look-back 48), the direct expert starts at the floor and learns from there.
        var before = ForecasterTests.configuration(horizon: 3)
        before.directLookback = 0
        before.experts = [.persistence, .smoothing, .linear, .network]
        var after = before
        after.directLookback = 48
        after.experts = [.persistence, .smoothing, .linear, .network, .direct]
        // A cycle of 24 samples the direct expert can learn exactly and a linear model of 4 lags
        // cannot (a sawtooth: a sine would be a linear recurrence of order 2), with a little noise.
        var noise = ForecasterTests.Noise(seed: 13)
        let series = (0..<3000).map { Double($0 % 24) / 2 + 0.1 * noise.next() }
        let original = Forecaster(configuration: before)
        ForecasterTests.run(original, Array(series[..<600]))
        let restored = try Self.formatFiveState(original).withUnsafeBytes { try Forecaster(configuration: after, state: $0) }
        #expect(restored.counters == original.counters && restored.trainer.counters == original.trainer.counters)
        let w = restored.combinationWeights(output: 2)
        #expect(abs(w[Expert.direct.rawValue] - Combination.weightFloor / (1 + Combination.weightFloor)) < 1e-12, "weights \(w)")
        #expect(abs(w.reduce(0, +) - 1) < 1e-12)
        ForecasterTests.run(restored, Array(series[600...]), from: 600)
        #expect(restored.direct.solved)
        let learned = restored.combinationWeights(output: 2)
        #expect(learned[Expert.direct.rawValue] > 0.5, "weights \(learned)")
        // One number short of either format is refused.
        #expect(throws: TrainerStateError.self) {
            try Self.formatFiveState(original).dropLast(8).withUnsafeBytes { try Forecaster(configuration: after, state: $0) }
        }
    }

    @Test func aStateRestoredUnderOtherExpertsCombinesOnlyThoseNamed() throws {
        // `experts` may change between runs: the restored combination drops an expert no longer
        // named and takes one named again back at the floor, each output's weights summing to 1.
        let all = ForecasterTests.configuration(horizon: 2)
        var fewer = all
        fewer.experts = [.persistence, .linear]
        var noise = ForecasterTests.Noise(seed: 14)
        let series = (0..<800).map { Double.sin(Double($0) * 0.3) * 5 + noise.next() }
        let original = Forecaster(configuration: all)
        ForecasterTests.run(original, Array(series[..<700]))
        var bytes = [UInt8](repeating: 0, count: original.stateByteCount)
        bytes.withUnsafeMutableBytes { original.writeState(into: $0) }
        let narrowed = try bytes.withUnsafeBytes { try Forecaster(configuration: fewer, state: $0) }
        let before = original.combinationWeights(output: 1), after = narrowed.combinationWeights(output: 1)
        let kept = before[Expert.persistence.rawValue] + before[Expert.linear.rawValue]
        for e in Expert.allCases {
            let expected = fewer.includes(e) ? before[e.rawValue] / kept : 0
            #expect(abs(after[e.rawValue] - expected) < 1e-12, "\(e): \(after)")
        }
        ForecasterTests.run(narrowed, Array(series[600...]), from: 700)
        #expect(narrowed.combinationWeights(output: 1)[Expert.network.rawValue] == 0)
        bytes = [UInt8](repeating: 0, count: narrowed.stateByteCount)
        bytes.withUnsafeMutableBytes { narrowed.writeState(into: $0) }
        let widened = try bytes.withUnsafeBytes { try Forecaster(configuration: all, state: $0) }
        let back = widened.combinationWeights(output: 1)
        #expect(abs(back.reduce(0, +) - 1) < 1e-12)
        let readmitted = Double(Expert.allCases.filter { !fewer.includes($0) }.count)
        for e in Expert.allCases where !fewer.includes(e) {
            #expect(abs(back[e.rawValue] - Combination.weightFloor / (1 + readmitted * Combination.weightFloor)) < 1e-12, "\(e): \(back)")
        }
        // The same experts both times: the weights come back bit for bit.
        let same = try bytes.withUnsafeBytes { try Forecaster(configuration: fewer, state: $0) }
        #expect(same.combinationWeights(output: 1) == narrowed.combinationWeights(output: 1))
    }

    @Test func aFormatFourStateIsReadAndItsNoveltyStartsOver() throws {
        let (original, series) = Self.learnedSine(seed: 9)
        // Record format 4's state: format 5's without the novelty's numbers.
        var bytes = Self.formatFiveState(original)
        let old = ForecasterLayout(ForecasterTests.configuration(), format: 5)
        let start = 8 + original.trainer.stateByteCount + 32 + 8 * old.noveltyHistory
        bytes.removeSubrange(start..<(start + 8 * NoveltyScore.count(targets: 1, format: 5)))
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series)
        // The novelty folded in the values since the restore only; the original, all of them. The
        // residual too, from the first day bin the profile knew again (hourly samples: after 24).
        #expect(restored.anomalyScore.novelty.base[2] == 300 && original.anomalyScore.novelty.base[2] == 900)
        #expect(restored.anomalyScore.novelty.residual[0] == 300 - 24)
        // One number short of either format is refused.
        #expect(throws: TrainerStateError.self) {
            try bytes.dropLast(8).withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
        }
    }

    @Test func aFormatSevenStateIsReadAndItsResidualStartsOver() throws {
        let (original, series) = Self.learnedSine(seed: 21)
        let bytes = Self.olderState(original, format: 7)
        // Format 8 added the residual and its profile; format 9 dropped three numbers a target,
        // format 10 added one, format 11 four, format 12 the shapes.
        let added = NoveltyScore.residualCount(targets: 1) + NoveltyScore.profileCount(targets: 1)
        #expect(bytes.count == original.stateByteCount - 8 * (added - 3 + 1 + 4 + NoveltyScore.shapePerTarget))
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series)
        // The value's novelty went on; the residual's profile started over (hourly samples: a
        // day bin comes back after 24), so it folded in the residuals since the restore only.
        #expect(restored.anomalyScore.novelty.base[2] == 900)
        #expect(restored.anomalyScore.novelty.residual[0] == 300 - 24 && original.anomalyScore.novelty.residual[0] == 900 - 24)
        // One number short of either format is refused.
        #expect(throws: TrainerStateError.self) {
            try bytes.dropLast(8).withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
        }
    }

    @Test func aFormatEightStateIsReadAndItsNoveltyGoesOnWithoutTheSpanOfFive() throws {
        // Record format 8's state: format 9's with a novelty span of 5 samples between 1 and 20
        // (and format 9's is this format's without the surprise's routine, the novelty's drift
        // runs and its shapes, 5 + 837 numbers). Read, the span is dropped and the others go on:
        // the same forecasts, bands and anomaly scores as the original's.
        let (original, series) = Self.learnedSine(seed: 25)
        let bytes = Self.olderState(original, format: 8)
        #expect(bytes.count == original.stateByteCount + 8 * (3 - 1 - 4 - NoveltyScore.shapePerTarget))
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series, sameAnomalies: true)
        let a = original.anomalyScore.novelty, b = restored.anomalyScore.novelty
        for i in 0..<NoveltyScore.count(targets: 1) { #expect(a.base[i].bitPattern == b.base[i].bitPattern, "number \(i)") }
        for i in 0..<NoveltyScore.residualCount(targets: 1) { #expect(a.residual[i].bitPattern == b.residual[i].bitPattern, "residual \(i)") }
        // One number short, or one too many, is refused.
        for wrong in [Array(bytes.dropLast(8)), bytes + [UInt8](repeating: 0, count: 8)] {
            #expect(throws: TrainerStateError.self) {
                try wrong.withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
            }
        }
    }

    @Test func aFormatNineStateIsReadAndItsSurpriseGoesOnNotYetRoutine() throws {
        // Record format 9's state: this format's without the surprise's routine, the novelty's
        // drift runs and its shapes (5 + 837 numbers a target, last). Read, they start at 0 and
        // the rest goes on exactly.
        let (original, series) = Self.learnedSine(seed: 27)
        let routine = original.anomalyScore.routine[0]
        let bytes = Self.olderState(original, format: 9)
        #expect(bytes.count == original.stateByteCount - 8 * (5 + NoveltyScore.shapePerTarget))
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series, sameAnomalies: true)
        let a = original.anomalyScore, b = restored.anomalyScore
        for i in 0..<AnomalyScore.historyCount(targets: 1) { #expect(a.base[i].bitPattern == b.base[i].bitPattern, "number \(i)") }
        // The routine counted the same alerts since the restore, from 0 instead of `routine`.
        #expect(abs(a.routine[0] - b.routine[0] - routine * Double.pow(1 - 1 / AnomalyScore.memory, 300)) < 1e-9)
        // One number short is refused (one more is format 10's state).
        #expect(throws: TrainerStateError.self) {
            try bytes.dropLast(8).withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
        }
    }

    @Test func aFormatTenStateIsReadAndItsNoveltyGoesOnWithItsDriftRunsAtZero() throws {
        // Record format 10's state: this format's without the novelty's drift runs and shapes (4 +
        // 837 numbers a target, last). Read, they start at 0 and the rest goes on exactly; a noisy
        // sine makes no run that long, so the runs are the original's again 300 samples on.
        let (original, series) = Self.learnedSine(seed: 29)
        let bytes = Self.olderState(original, format: 10)
        #expect(bytes.count == original.stateByteCount - 8 * (4 + NoveltyScore.shapePerTarget))
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series, sameAnomalies: true)
        let a = original.anomalyScore.novelty, b = restored.anomalyScore.novelty
        for i in 0..<NoveltyScore.count(targets: 1) { #expect(a.base[i].bitPattern == b.base[i].bitPattern, "number \(i)") }
        for i in 0..<NoveltyScore.driftCount(targets: 1) { #expect(a.drift[i] == b.drift[i], "drift \(i)") }
        // Two numbers short (one short is format 9's state), or one too many, is refused.
        for wrong in [Array(bytes.dropLast(16)), bytes + [UInt8](repeating: 0, count: 8)] {
            #expect(throws: TrainerStateError.self) {
                try wrong.withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
            }
        }
    }

    @Test func aFormatElevenStateIsReadAndItsNoveltyStartsRememberingShapes() throws {
        // Record format 11's state: this format's without the novelty's shapes (837 numbers a
        // target, last). Read, the shapes start from none and the rest goes on exactly; the
        // restored stream remembers the shapes of the 300 samples since (one every 4 once 32
        // values are in), and scores none before 75 are remembered, as a new stream would.
        let (original, series) = Self.learnedSine(seed: 31)
        let bytes = Self.olderState(original, format: 11)
        #expect(bytes.count == original.stateByteCount - 8 * NoveltyScore.shapePerTarget)
        let restored = try Self.expectCarriesOn(original, from: bytes, series: series, sameAnomalies: true)
        let a = original.anomalyScore.novelty, b = restored.anomalyScore.novelty
        for i in 0..<NoveltyScore.count(targets: 1) { #expect(a.base[i].bitPattern == b.base[i].bitPattern, "number \(i)") }
        for i in 0..<NoveltyScore.driftCount(targets: 1) { #expect(a.drift[i] == b.drift[i], "drift \(i)") }
        #expect(a.shape[0] == 900 && b.shape[0] == 300, "values pushed: \(a.shape[0]), \(b.shape[0])")
        #expect(a.shape[2] == Double(NoveltyScore.shapeMemory) && b.shape[2] == Double((300 - NoveltyScore.shapeValues) / 4 + 1))
        // One number short, or one too many, is refused.
        for wrong in [Array(bytes.dropLast(8)), bytes + [UInt8](repeating: 0, count: 8)] {
            #expect(throws: TrainerStateError.self) {
                try wrong.withUnsafeBytes { try Forecaster(configuration: ForecasterTests.configuration(), state: $0) }
            }
        }
    }

    @Test func aFormatSixStateFarAheadGainsASeasonalExpertThatEarnsItsWeight() throws {
        // A stream of horizon 3 saved before the seasonal expert (no direct expert either): restored,
        // the seasonal expert starts at the floor with an empty profile and learns a daily cycle
        // that the linear model of 4 lags cannot follow (a sawtooth).
        var before = ForecasterTests.configuration(horizon: 3)
        before.directLookback = 0
        before.experts = [.persistence, .smoothing, .linear, .network]
        var after = before
        after.experts = nil
        var noise = ForecasterTests.Noise(seed: 15)
        let series = (0..<2400).map { Double($0 % 24) / 2 + 0.1 * noise.next() }
        let original = Forecaster(configuration: before)
        ForecasterTests.run(original, Array(series[..<600]))
        let bytes = Self.olderState(original, format: 6)
        let restored = try bytes.withUnsafeBytes { try Forecaster(configuration: after, state: $0) }
        #expect(restored.counters == original.counters && restored.trainer.counters == original.trainer.counters)
        let w = restored.combinationWeights(output: 2)
        #expect(abs(w[Expert.seasonal.rawValue] - Combination.weightFloor / (1 + Combination.weightFloor)) < 1e-12, "weights \(w)")
        #expect(restored.seasonal.isOn && restored.layout.seasonal + SeasonalExpert.count(targets: 1, on: true) == restored.layout.noveltyResidual)
        ForecasterTests.run(restored, Array(series[600...]), from: 600)
        let learned = restored.combinationWeights(output: 2)
        #expect(learned[Expert.seasonal.rawValue] > 0.5, "weights \(learned)")
        // A format-6 state one number short is refused.
        #expect(throws: TrainerStateError.self) {
            try bytes.dropLast(8).withUnsafeBytes { try Forecaster(configuration: after, state: $0) }
        }
    }

    // MARK: - SeasonalExpert

    @Test func theSeasonalExpertForecastsTheCyclesChangeFromTheTimeAxis() {
        // Two targets, 15-minute samples of a daily cycle (range 6) plus, on one weekday, a step of
        // 5: after six weeks the forecast change across the day is the cycle's within 5% of its
        // range, Monday's step is in the week's profile within 10%, and a bin never visited
        // counts nothing.
        let k = 2
        let base: UnsafeMutablePointer<Double> = Self.zeroed(SeasonalExpert.count(targets: k, on: true))
        defer { base.deallocate() }
        let seasonal = SeasonalExpert(base: base, targets: k, isOn: true)
        seasonal.start()
        let monday = 1_700_438_400.0  // 2023-11-20 00:00 UTC, a Monday
        func cycle(_ t: Double) -> Double { Double.sin(2 * .pi * t / 86_400) * 3 }
        func step(_ t: Double) -> Double { (t - monday).truncatingRemainder(dividingBy: 7 * 86_400) < 86_400 ? 5 : 0 }
        let quarter = 900.0
        for i in 0..<(42 * 96) {
            let t = monday + Double(i) * quarter
            seasonal.observe(cycle(t) + 100, target: 0, at: .init(t), interval: quarter, restart: i == 0)
            seasonal.observe(cycle(t) + step(t), target: 1, at: .init(t), interval: quarter, restart: i == 0)
        }
        let now = monday + 42 * 86_400 + 3 * 3600  // the seventh Monday, 03:00
        for hours in [1.0, 6, 12] {
            let ahead = now + hours * 3600
            let change = seasonal.change(target: 0, from: .init(now), to: .init(ahead))
            #expect(abs(change - (cycle(ahead) - cycle(now))) < 0.3, "\(hours) h: \(change)")
        }
        // Monday to Tuesday: the step goes away, whatever the time of day.
        let tuesday = now + 86_400
        let change = seasonal.change(target: 1, from: .init(now), to: .init(tuesday))
        #expect(abs(change - -5) < 0.5, "\(change)")
        // Samples at quarter hours only: a time between them lies in a 5-minute day bin never
        // visited, which counts nothing; the week's 15-minute bins are all visited.
        #expect(SeasonalExpert.dayBin(now + 300) != SeasonalExpert.dayBin(now))
        let between = seasonal.change(target: 0, from: .init(now), to: .init(now + 6 * 3600 + 300))
        let week = base + 1 + SeasonalExpert.dayBins
        let weekly = week[SeasonalExpert.weekBin(now + 6 * 3600 + 300)] - week[SeasonalExpert.weekBin(now)]
        #expect(abs(between - weekly) < 1e-12)
        // Weeks start on Monday 00:00 UTC, days at midnight UTC.
        #expect(SeasonalExpert.weekBin(monday) == 0 && SeasonalExpert.dayBin(monday) == 0)
        #expect(SeasonalExpert.weekBin(monday - 1) == SeasonalExpert.weekBins - 1)
        #expect(SeasonalExpert.dayBin(monday + 86_399.9) == SeasonalExpert.dayBins - 1)
        // A time that is not finite (the latest time plus steps of an absurd interval) is bin 0.
        #expect(SeasonalExpert.dayBin(.infinity) == 0 && SeasonalExpert.weekBin(.nan) == 0)
    }

    @Test func absurdTimesDoNotStopAStreamFarAhead() {
        // A first interval of 1e308 seconds (the clock takes it whole): the forecasts' times are
        // infinite; the seasonal expert forecasts on, and so does the stream, through times that
        // then go back.
        let f = Forecaster(configuration: ForecasterTests.configuration(horizon: 3))
        let times: [Double] = [0, 1e308, 1.7e308, .greatestFiniteMagnitude, 3, 4, 5]
        for (i, t) in times.enumerated() {
            var x = Float(i % 3)
            #expect(f.predict(&x, time: t))
            f.learn()
            #expect((0..<f.outputs).allSatisfy { f.forecast[$0].isFinite }, "sample \(i)")
        }
    }

    // MARK: - DirectExpert

    @Test func theDirectExpertLearnsACycleFromDelayedTargetsOnly() {
        // A cycle of 24 samples: after enough origins, the direct expert forecasts every step
        // of it. It learns origin n − P at sample n: its features read samples up to n − P only.
        var c = ForecasterTests.configuration(horizon: 6)
        c.directLookback = 30
        let f = Forecaster(configuration: c)
        let cycle = (0..<2000).map { Double.sin(Double($0) * 2 * .pi / 24) * 3 + 10 }
        ForecasterTests.run(f, Array(cycle[..<1990]))
        #expect(f.direct.solved && f.direct.features == 31)
        for p in 1...6 {
            let expected = cycle[1989 + p]
            #expect(abs(f.expertForecast(.direct, output: p - 1) - expected) < 1e-3, "step \(p)")
        }
        // Two streams that differ in their newest sample only, 499: their Gram matrices, which
        // hold the features of origins up to 493, are the same (in the units of the values: the
        // spread would take sample 499 in).
        c.normalization = .none
        let g = Forecaster(configuration: c), h = Forecaster(configuration: c)
        ForecasterTests.run(g, Array(cycle[..<500]))
        var changed = Array(cycle[..<500])
        changed[499] += 1
        ForecasterTests.run(h, changed)
        let d = DirectExpert.packed(g.direct.features)
        #expect((0..<d).allSatisfy { g.direct.gram[$0] == h.direct.gram[$0] })
    }

    @Test func theRollingFiguresTrackAKnownSequence() {
        let figures: UnsafeMutablePointer<Double> = Self.zeroed(RollingFigures.count)
        defer { figures.deallocate() }
        let rolling = RollingFigures(figures: figures)
        #expect(rolling.forecastMSE == nil && rolling.persistenceMSE == nil && rolling.coverage == nil)
        // A plain mean over the first values: of 1 ... 10 is 5.5; 3 held of 4, then 1 of 4.
        for i in 1...10 { rolling.roll(Double(i), 2 * Double(i), held: i == 1 ? 3 : 1, of: i <= 2 ? 4 : 0) }
        #expect(abs(rolling.forecastMSE! - 5.5) < 1e-12)
        #expect(abs(rolling.persistenceMSE! - 11) < 1e-12)
        #expect(abs(rolling.coverage! - 0.5) < 1e-12)
        // A wild sample is left out; then a memory of about `memory` samples.
        rolling.roll(.infinity, 1, held: 0, of: 1)
        #expect(abs(rolling.forecastMSE! - 5.5) < 1e-12)
        for _ in 0..<(10 * Int(RollingFigures.memory)) { rolling.roll(1, 1, held: 1, of: 1) }
        #expect(abs(rolling.forecastMSE! - 1) < 1e-3)
        #expect(abs(rolling.coverage! - 1) < 1e-3)
    }

    @Test func theHistoryReusesARowEveryRSamples() {
        let rows = 3, outputs = 2
        let base: UnsafeMutablePointer<Double> = Self.zeroed(ForecastHistory.count(rows: rows, outputs: outputs))
        defer { base.deallocate() }
        let history = ForecastHistory(base: base, rows: rows, outputs: outputs)
        let made = history.made(at: 4)
        made[.smoothing, output: 1] = 7
        made[combined: 1] = 8
        made[halfWidth: 0] = 9
        #expect(history.made(at: 1)[.smoothing, output: 1] == 7)
        #expect(history.made(at: 7).experts(output: 1)[Expert.smoothing.rawValue] == 7)
        #expect(history.made(at: 1)[combined: 1] == 8 && history.made(at: 1)[halfWidth: 0] == 9)
        #expect(history.made(at: 5)[combined: 1] == 0)
    }
}

extension NoveltyScore {
    /// A sample without a time whose value is learned from as it came.
    func observe(target j: Int, value: Double) {
        observe(target: j, value: value, learned: value, time: nil, interval: nil)
    }

    /// A sample taken at Unix time `time` (nil: unknown), on a target with no recent alerts.
    func observe(target j: Int, value: Double, learned: Double, time: Double?, interval: Double?) {
        var routine = 0.0
        observe(target: j, value: value, learned: learned, at: time.map(SeasonalExpert.Bins.init), interval: interval, routine: &routine)
    }
}
