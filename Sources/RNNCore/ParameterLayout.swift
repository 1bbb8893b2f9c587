/// One named tensor inside the flat parameter buffer.
public struct TensorSlot: Sendable, Equatable, Codable {
    public var name: String
    public var offset: Int
    public var rows: Int
    public var cols: Int
    public var count: Int { rows * cols }
    public var range: Range<Int> { offset..<(offset + count) }
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
        func add(_ name: String, _ rows: Int, _ cols: Int) -> Int {
            slots.append(TensorSlot(name: name, offset: next, rows: rows, cols: cols))
            defer { next += rows * cols }
            return next
        }
        wx = add("Wx", gh, inputs)
        wh = add("Wh", gh, hidden)
        b = add("b", gh, 1)
        bhn = cell == .gru ? add("bhn", hidden, 1) : nil
        wy = add("Wy", outputs, hidden)
        by = add("by", outputs, 1)
        tensors = slots
        count = next
    }

    public subscript(name: String) -> TensorSlot? { tensors.first { $0.name == name } }
}
