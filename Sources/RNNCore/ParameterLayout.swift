/// One named tensor inside the flat parameter buffer.
public struct TensorSlot: Sendable, Equatable, Codable {
    public var name: String
    public var offset: Int
    /// The mathematical shape, `rows × cols` (as in docs/numerics.md and PyTorch).
    public var rows: Int
    public var cols: Int
    /// A bias vector (initialised to zero) rather than a weight matrix.
    public var isBias: Bool
    /// Stored as its transpose (`cols × rows` row-major), so that the kernels read it in
    /// memory order.
    public var transposed: Bool
    public var count: Int { rows * cols }
    public var range: Range<Int> { offset..<(offset + count) }

    /// The buffer index of element (`row`, `col`) of the mathematical matrix.
    public func index(row: Int, col: Int) -> Int {
        transposed ? offset + col * rows + row : offset + row * cols + col
    }
}

/// Where every tensor of a model lives in its flat buffer (docs/numerics.md, "Parameters").
/// Parameters, gradients and optimizer moments share it, so zeroing, clipping, the optimizer
/// step and checkpointing are single passes over one buffer.
public struct ParameterLayout: Sendable, Equatable {
    public let tensors: [TensorSlot]
    public let count: Int

    // Offsets of the tensors the kernels address directly.
    public let wx: Int, wh: Int, b: Int, bhn: Int?, wy: Int, by: Int

    public init(cell: CellKind, inputs: Int, hidden: Int, outputs: Int) {
        let gh = cell.gates * hidden
        var slots: [TensorSlot] = []
        var next = 0
        func add(_ name: String, _ rows: Int, _ cols: Int, bias: Bool = false, transposed: Bool = false) -> Int {
            slots.append(TensorSlot(
                name: name, offset: next, rows: rows, cols: cols, isBias: bias, transposed: transposed))
            defer { next += rows * cols }
            return next
        }
        // The cell's matrices are stored transposed: the forward pass, run for every sample,
        // then accumulates whole rows of 4H (axpy form) instead of reducing dot products.
        wx = add("Wx", gh, inputs, transposed: true)
        wh = add("Wh", gh, hidden, transposed: true)
        b = add("b", gh, 1, bias: true)
        bhn = cell == .gru ? add("bhn", hidden, 1, bias: true) : nil
        wy = add("Wy", outputs, hidden)
        by = add("by", outputs, 1, bias: true)
        tensors = slots
        count = next
    }

    public subscript(name: String) -> TensorSlot? { tensors.first { $0.name == name } }
}
