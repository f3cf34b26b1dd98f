/// Hashes that are the same in every process and on every machine, for consistent hashing.
///
/// Not Swift's `Hasher`: it is seeded per process, so two agents (or one agent after a
/// restart) would place the same key on different backends.
public enum StableHash {
    /// FNV-1a, 64 bits (Fowler, Noll and Vo; the offset basis and prime of the reference).
    /// Simple and stable, but its high bits mix poorly for short keys: use `hash(_:)` for ring
    /// positions.
    public static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// MurmurHash3's 64-bit finalizer (Appleby's `fmix64`): every input bit flips each output
    /// bit with probability about 1/2, so nearby inputs land far apart on the ring.
    public static func mix64(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }

    /// A key's position on the ring: the mixed FNV-1a of its UTF-8 bytes.
    public static func hash(_ key: String) -> UInt64 {
        mix64(fnv1a64(key.utf8))
    }

    /// A key's position on the ring from raw bytes (a client address, say).
    public static func hash(bytes: some Sequence<UInt8>) -> UInt64 {
        mix64(fnv1a64(bytes))
    }
}
