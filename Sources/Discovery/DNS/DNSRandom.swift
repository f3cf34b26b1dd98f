/// SplitMix64 (Steele, Lea & Flood, 2014): the cheap generator behind the answers' shuffle.
/// Not cryptographic; DNS answer order only spreads load. One per event loop, so never shared.
/// (Raft has its own copy; Discovery may not import Raft, so this small duplicate stays here.)
public struct DNSRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator that replays the same sequence for the same seed (tests).
    public init(seed: UInt64) {
        self.state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
