// The recurrent network: a cell (Elman, LSTM or GRU) and a linear head, their forward and
// backward passes side by side, over one flat parameter buffer (docs/numerics.md).
//
// Legend: I = network inputs per step (ModelConfiguration.features), H = hidden units, G = gate blocks (1, 4, 3), GH = G·H, O = head outputs,
// S = state size (H, or 2H for the LSTM's [h, c]), T = window steps (at most k2).
// Per step caches: gates (GH, post-activation: Elman h; LSTM i f g o; GRU r z n),
// aux (H: LSTM tanh(c); GRU Wh_n h + bhn), y (O).

/// What a model needs only while it computes a step or an update, and not between samples:
/// the gradient buffer, the window's caches and scratch vectors. Models of one shape on one
/// thread can share a workspace (a worker serving thousands of streams keeps one), so that a
/// model's own memory is its parameters, its optimizer moments and its window of samples.
/// Confined to one thread; allocates only in `init`.
public final class TrainingWorkspace<S: RNNScalar> {
    /// The shape it serves: cell, inputs, hidden units, head outputs, window capacity.
    public let cell: CellKind
    public let inputs: Int, hidden: Int, outputs: Int, capacity: Int
    let gateRows: Int, stateSize: Int, parameterCount: Int

    /// The gradient buffer, in the models' parameter layout.
    public let gradients: UnsafeMutablePointer<S>
    // Window caches, `capacity` rows each (states: capacity + 1, row 0 the carried state).
    let windowInputs: UnsafeMutablePointer<S>    // T × I
    let windowStates: UnsafeMutablePointer<S>    // (T+1) × S
    let windowGates: UnsafeMutablePointer<S>     // T × GH
    let windowAux: UnsafeMutablePointer<S>       // T × H
    let windowOutputs: UnsafeMutablePointer<S>   // T × O
    let outputGradients: UnsafeMutablePointer<S> // T × O, dLoss/dy
    let deltaInput: UnsafeMutablePointer<S>      // T × GH, dLoss/d(Wx x + b)
    let deltaHidden: UnsafeMutablePointer<S>     // T × GH, dLoss/d(Wh h); GRU only, else deltaInput
    let stateGradient: UnsafeMutablePointer<S>   // S
    let previousStateGradient: UnsafeMutablePointer<S> // S
    let scratchA: UnsafeMutablePointer<S>        // GH
    let scratchU: UnsafeMutablePointer<S>        // GH
    private var owned: [UnsafeMutablePointer<S>] = []

    /// A workspace for models of `configuration`'s shape.
    public init(_ configuration: ModelConfiguration) {
        cell = configuration.cell
        inputs = configuration.features
        hidden = configuration.hidden
        outputs = configuration.outputs
        capacity = configuration.window
        gateRows = cell.gates * hidden
        stateSize = cell == .lstm ? 2 * hidden : hidden
        parameterCount = ParameterLayout(cell: cell, inputs: inputs, hidden: hidden, outputs: outputs).count
        var owned: [UnsafeMutablePointer<S>] = []
        func buffer(_ count: Int) -> UnsafeMutablePointer<S> {
            let p: UnsafeMutablePointer<S> = allocateZeroed(count)
            owned.append(p)
            return p
        }
        gradients = buffer(parameterCount)
        windowInputs = buffer(capacity * inputs)
        windowStates = buffer((capacity + 1) * stateSize)
        windowGates = buffer(capacity * gateRows)
        windowAux = buffer(capacity * hidden)
        windowOutputs = buffer(capacity * outputs)
        outputGradients = buffer(capacity * outputs)
        deltaInput = buffer(capacity * gateRows)
        deltaHidden = cell == .gru ? buffer(capacity * gateRows) : deltaInput
        stateGradient = buffer(stateSize)
        previousStateGradient = buffer(stateSize)
        scratchA = buffer(gateRows)
        scratchU = buffer(gateRows)
        self.owned = owned
    }

    deinit { for p in owned { p.deallocate() } }

    /// Whether a model of `configuration` can use this workspace.
    public func serves(_ configuration: ModelConfiguration) -> Bool {
        configuration.cell == cell && configuration.features == inputs && configuration.hidden == hidden
            && configuration.outputs == outputs && configuration.window <= capacity
    }

    /// Bytes this workspace holds.
    public var bytes: Int {
        MemoryLayout<S>.stride * (parameterCount + capacity * (inputs + 2 * outputs + hidden + (cell == .gru ? 3 : 2) * gateRows)
            + (capacity + 1) * stateSize + 2 * stateSize + 2 * gateRows)
    }
}

/// A recurrent network: its parameters, and a workspace (its own or shared) for the window.
/// Confined to one thread; allocates only in `init`.
public final class RecurrentNetwork<S: RNNScalar> {
    public let cell: CellKind
    public let elmanActivation: Activation
    public let headActivation: Activation
    public let inputs: Int, hidden: Int, outputs: Int, gateRows: Int, stateSize: Int
    /// Steps the window caches can hold (k2).
    public let capacity: Int
    public let layout: ParameterLayout
    public let workspace: TrainingWorkspace<S>

    /// The flat parameter buffer, `layout.count` values.
    public let parameters: UnsafeMutablePointer<S>
    /// The gradient buffer (the workspace's), same layout. Backward accumulates into it;
    /// callers zero it.
    public let gradients: UnsafeMutablePointer<S>

    // The workspace's buffers, addressed directly by the kernels' callers below.
    @usableFromInline let windowInputs: UnsafeMutablePointer<S>
    @usableFromInline let windowStates: UnsafeMutablePointer<S>
    @usableFromInline let windowGates: UnsafeMutablePointer<S>
    @usableFromInline let windowAux: UnsafeMutablePointer<S>
    @usableFromInline let windowOutputs: UnsafeMutablePointer<S>
    @usableFromInline let outputGradients: UnsafeMutablePointer<S>
    @usableFromInline let deltaInput: UnsafeMutablePointer<S>
    @usableFromInline let deltaHidden: UnsafeMutablePointer<S>
    @usableFromInline let stateGradient: UnsafeMutablePointer<S>
    @usableFromInline let previousStateGradient: UnsafeMutablePointer<S>
    @usableFromInline let scratchA: UnsafeMutablePointer<S>
    @usableFromInline let scratchU: UnsafeMutablePointer<S>

    /// A network of `configuration`, initialised from its seed (or left at zero for a caller
    /// about to load saved weights), computing in `workspace` (shared with other networks of
    /// the same shape on this thread) or in one of its own.
    public init(_ configuration: ModelConfiguration, workspace shared: TrainingWorkspace<S>? = nil, initialize: Bool = true) {
        precondition(configuration.problems().isEmpty, "invalid model: \(configuration.problems())")
        cell = configuration.cell
        elmanActivation = configuration.elmanActivation
        headActivation = configuration.headActivation
        inputs = configuration.features
        hidden = configuration.hidden
        outputs = configuration.outputs
        gateRows = cell.gates * hidden
        stateSize = cell == .lstm ? 2 * hidden : hidden
        capacity = configuration.window
        layout = ParameterLayout(cell: cell, inputs: inputs, hidden: hidden, outputs: outputs)
        let workspace = shared ?? TrainingWorkspace(configuration)
        precondition(workspace.serves(configuration), "the workspace is for another model shape")
        self.workspace = workspace
        parameters = allocateZeroed(layout.count)
        gradients = workspace.gradients
        windowInputs = workspace.windowInputs
        windowStates = workspace.windowStates
        windowGates = workspace.windowGates
        windowAux = workspace.windowAux
        windowOutputs = workspace.windowOutputs
        outputGradients = workspace.outputGradients
        deltaInput = workspace.deltaInput
        deltaHidden = workspace.deltaHidden
        stateGradient = workspace.stateGradient
        previousStateGradient = workspace.previousStateGradient
        scratchA = workspace.scratchA
        scratchU = workspace.scratchU
        if initialize { initializeParameters(seed: configuration.seed) }
    }

    deinit { parameters.deallocate() }

    /// PyTorch's scheme: weights uniform in ±1/√H; biases zero, except the LSTM's forget gate
    /// at 1 so that memory is kept until the network learns to drop it.
    public func initializeParameters(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let bound = 1 / Double(hidden).squareRoot()
        for slot in layout.tensors {
            for i in slot.range { parameters[i] = slot.isBias ? 0 : S(rng.uniform(bound)) }
        }
        if cell == .lstm {
            for i in 0..<hidden { parameters[layout.b + hidden + i] = 1 }
        }
    }

    // MARK: - Forward

    /// One step: `next` state, the step's caches and the head's outputs `y` from input `x` and
    /// the `previous` state, with the current parameters.
    @inlinable
    public func forwardStep(
        x: UnsafePointer<S>, previous: UnsafePointer<S>, next: UnsafeMutablePointer<S>,
        gates: UnsafeMutablePointer<S>, aux: UnsafeMutablePointer<S>, y: UnsafeMutablePointer<S>
    ) {
        let h = hidden, gh = gateRows, p = parameters
        let a = scratchA, u = scratchU
        // a = b + Wx x, u = Wh h (both matrices stored transposed).
        let bias = p + layout.b
        a.update(from: bias, count: gh)
        matvecTransposed(p + layout.wx, x, a, rows: inputs, cols: gh, accumulate: true)
        matvecTransposed(p + layout.wh, previous, u, rows: h, cols: gh, accumulate: false)
        switch cell {
        case .elman:
            for j in 0..<h { gates[j] = a[j] + u[j] }
            activate(elmanActivation, gates, count: h)
            next.update(from: gates, count: h)
        case .lstm:
            for j in 0..<gh { gates[j] = a[j] + u[j] }
            sigmoidInPlace(gates, count: 2 * h)
            tanhInPlace(gates + 2 * h, count: h)
            sigmoidInPlace(gates + 3 * h, count: h)
            let cPrev = previous + h, c = next + h
            for j in 0..<h { c[j] = gates[h + j] * cPrev[j] + gates[j] * gates[2 * h + j] }
            aux.update(from: c, count: h)
            tanhInPlace(aux, count: h)
            for j in 0..<h { next[j] = gates[3 * h + j] * aux[j] }
        case .gru:
            for j in 0..<(2 * h) { gates[j] = a[j] + u[j] }
            sigmoidInPlace(gates, count: 2 * h)
            let bhn = p + layout.bhn!
            for j in 0..<h { aux[j] = u[2 * h + j] + bhn[j] }
            let r = gates, n = gates + 2 * h
            for j in 0..<h { n[j] = a[2 * h + j] + r[j] * aux[j] }
            tanhInPlace(n, count: h)
            let z = gates + h
            for j in 0..<h { next[j] = (1 - z[j]) * n[j] + z[j] * previous[j] }
        }
        matvec(p + layout.wy, UnsafePointer(next), y, rows: outputs, cols: h, accumulate: false)
        let by = p + layout.by
        for k in 0..<outputs { y[k] += by[k] }
        activate(headActivation, y, count: outputs)
    }

    @inlinable
    func activate(_ g: Activation, _ v: UnsafeMutablePointer<S>, count: Int) {
        switch g {
        case .identity: break
        case .tanh: tanhInPlace(v, count: count)
        case .sigmoid: sigmoidInPlace(v, count: count)
        case .relu: reluInPlace(v, count: count)
        }
    }

    /// `g'` expressed through the activation's output `y`, multiplied into `d`.
    @inlinable
    func multiplyDerivative(
        _ g: Activation, output y: UnsafePointer<S>, _ d: UnsafeMutablePointer<S>, count: Int
    ) {
        switch g {
        case .identity: break
        case .tanh: for j in 0..<count { d[j] *= 1 - y[j] * y[j] }
        case .sigmoid: for j in 0..<count { d[j] *= y[j] * (1 - y[j]) }
        case .relu: for j in 0..<count where !(y[j] > 0) { d[j] = 0 }
        }
    }

    /// Pointers to the inputs of window step `t` (fill before `forwardWindow`).
    @inlinable
    public func windowInput(_ t: Int) -> UnsafeMutablePointer<S> { windowInputs + t * inputs }

    /// The state before window step `t`; row 0 is the carried state (fill before `forwardWindow`).
    @inlinable
    public func windowState(_ t: Int) -> UnsafeMutablePointer<S> { windowStates + t * stateSize }

    /// The head's outputs of window step `t` (valid after `forwardWindow`).
    @inlinable
    public func windowOutput(_ t: Int) -> UnsafeMutablePointer<S> { windowOutputs + t * outputs }

    /// dLoss/dy of window step `t` (fill before `backwardWindow`).
    @inlinable
    public func windowOutputGradient(_ t: Int) -> UnsafeMutablePointer<S> { outputGradients + t * outputs }

    /// Runs `steps` steps from the carried state `windowState(0)` over `windowInput(0..<steps)`,
    /// caching what backward needs.
    @inlinable
    public func forwardWindow(steps: Int) {
        precondition(steps <= capacity)
        for t in 0..<steps {
            forwardStep(
                x: windowInput(t), previous: windowState(t), next: windowState(t + 1),
                gates: windowGates + t * gateRows, aux: windowAux + t * hidden,
                y: windowOutput(t))
        }
    }

    // MARK: - Backward

    /// Back-propagates `windowOutputGradient(0..<steps)` through the last `forwardWindow`,
    /// accumulating (`+=`) into `gradients`. The gradient into the carried state is dropped.
    ///
    /// With `stepClip`, the state gradient of every step (LSTM: h and c together), once the
    /// head's and the next step's contributions are summed, is scaled to norm `stepClip` when
    /// it exceeds it.
    @inlinable
    public func backwardWindow(steps: Int, stepClip: S?) {
        let h = hidden, gh = gateRows, s = stateSize, p = parameters
        var dS = stateGradient, dPrev = previousStateGradient
        dS.initialize(repeating: 0, count: s)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let dy = windowOutputGradient(t)
            multiplyDerivative(headActivation, output: windowOutput(t), dy, count: outputs)
            matvecTransposed(p + layout.wy, dy, dS, rows: outputs, cols: h, accumulate: true)
            if let c = stepClip {
                let norm = sumOfSquares(dS, count: s).squareRoot()
                if norm > c {
                    let scale = c / norm
                    for j in 0..<s { dS[j] *= scale }
                }
            }
            let gates = windowGates + t * gateRows, aux = windowAux + t * hidden
            let previous = windowState(t), current = windowState(t + 1)
            let dA = deltaInput + t * gh, dU = deltaHidden + t * gh
            switch cell {
            case .elman:
                for j in 0..<h { dA[j] = dS[j] }
                multiplyDerivative(elmanActivation, output: current, dA, count: h)
                dPrev.initialize(repeating: 0, count: s)
            case .lstm:
                let cPrev = previous + h
                for j in 0..<h {
                    let i = gates[j], f = gates[h + j], g = gates[2 * h + j], o = gates[3 * h + j]
                    let tc = aux[j], dh = dS[j]
                    let dc = dS[h + j] + dh * o * (1 - tc * tc)
                    dA[j] = dc * g * i * (1 - i)
                    dA[h + j] = dc * cPrev[j] * f * (1 - f)
                    dA[2 * h + j] = dc * i * (1 - g * g)
                    dA[3 * h + j] = dh * tc * o * (1 - o)
                    dPrev[j] = 0
                    dPrev[h + j] = dc * f
                }
            case .gru:
                for j in 0..<h {
                    let r = gates[j], z = gates[h + j], n = gates[2 * h + j]
                    let dh = dS[j]
                    let dn = dh * (1 - z) * (1 - n * n)
                    let dr = dn * aux[j] * r * (1 - r)
                    let dz = dh * (previous[j] - n) * z * (1 - z)
                    dA[j] = dr; dA[h + j] = dz; dA[2 * h + j] = dn
                    dU[j] = dr; dU[h + j] = dz; dU[2 * h + j] = dn * r
                    dPrev[j] = dh * z
                }
            }
            matvec(p + layout.wh, dU, dPrev, rows: h, cols: gh, accumulate: true)
            swap(&dS, &dPrev)
        }
        // Weight gradients of the whole window, one pass each.
        let g = gradients
        gradientUpdate(g + layout.wx, rows: inputs, cols: gh, windowInputs, lda: inputs,
                       deltaInput, ldb: gh, steps: steps)
        columnSumAccumulate(deltaInput, lda: gh, steps: steps, g + layout.b, count: gh)
        gradientUpdate(g + layout.wh, rows: h, cols: gh, windowStates, lda: s,
                       deltaHidden, ldb: gh, steps: steps)
        if let bhn = layout.bhn {
            columnSumAccumulate(deltaHidden + 2 * h, lda: gh, steps: steps, g + bhn, count: h)
        }
        gradientUpdate(g + layout.wy, rows: outputs, cols: h, outputGradients, lda: outputs,
                       windowStates + s, ldb: s, steps: steps)
        columnSumAccumulate(outputGradients, lda: outputs, steps: steps, g + layout.by, count: outputs)
    }

    // MARK: - Cost

    /// Floating-point operations of one forward step: the matrix products, 2 per multiply-add
    /// (activations and element-wise products, a few percent at H ≥ 16, are not counted).
    public var forwardFLOPs: Int { 2 * gateRows * (inputs + hidden) + 2 * outputs * hidden }

    /// Floating-point operations of back-propagating one step, counted the same way:
    /// Whᵀδ and Wyᵀdy, and the weight-gradient updates.
    public var backwardFLOPs: Int { 2 * gateRows * hidden + 2 * gateRows * (inputs + hidden) + 4 * outputs * hidden }
}
