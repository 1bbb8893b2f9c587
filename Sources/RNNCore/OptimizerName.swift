/// The optimizer names of the configuration file and the flags, with the settings each stands for.
public enum OptimizerName: String, CaseIterable, Sendable {
    case adafactor, adam, sgd, momentum

    public var kind: OptimizerKind {
        switch self {
        case .adafactor: .defaultAdafactor
        case .adam: .defaultAdam
        case .sgd: .sgd
        case .momentum: .momentum(0.9)
        }
    }

    public init(_ kind: OptimizerKind) {
        switch kind {
        case .adafactor: self = .adafactor
        case .adam: self = .adam
        case .sgd: self = .sgd
        case .momentum: self = .momentum
        }
    }
}
