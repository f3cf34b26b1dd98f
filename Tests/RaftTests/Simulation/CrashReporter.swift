#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Names the seeds being simulated when the process dies on a trap (a failed precondition in
/// the core), which a test cannot catch: the seed is what makes the crash reproducible.
/// The handler only formats into preallocated memory and calls `write`, which is
/// async-signal-safe.
enum CrashReporter {
    static let slotCount = 64
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UInt64> = {
        let pointer = UnsafeMutablePointer<UInt64>.allocate(capacity: slotCount)
        pointer.initialize(repeating: .max, count: slotCount)
        return pointer
    }()
    nonisolated(unsafe) private static let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 4096)
    private static let installed: Bool = {
        _ = slots
        _ = buffer
        for signalNumber in [SIGILL, SIGTRAP, SIGABRT, SIGSEGV] {
            signal(signalNumber) { received in
                CrashReporter.report()
                signal(received, SIG_DFL)
                raise(received)
            }
        }
        return true
    }()

    /// Marks `seed` as running in `slot` (nil when done).
    static func running(_ seed: UInt64?, slot: Int) {
        _ = installed
        slots[slot % slotCount] = seed ?? .max
    }

    private static func report() {
        var length = 0
        func append(_ text: StaticString) {
            text.withUTF8Buffer { bytes in
                for byte in bytes where length < 4000 {
                    buffer[length] = byte
                    length += 1
                }
            }
        }
        func append(_ number: UInt64) {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                         UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            var remaining = number
            withUnsafeMutableBytes(of: &digits) { raw in
                repeat {
                    raw[count] = UInt8(48 + remaining % 10)
                    remaining /= 10
                    count += 1
                } while remaining > 0
                while count > 0 && length < 4000 {
                    count -= 1
                    buffer[length] = raw[count]
                    length += 1
                }
            }
        }
        append("\nRaft simulation crashed while running seed(s):")
        for slot in 0..<slotCount where slots[slot] != .max {
            append(" ")
            append(slots[slot])
        }
        append("\nreplay one with RAFT_SIM_SEED=<seed> swift test --filter RaftTests.SimulationTests\n")
        _ = write(2, buffer, length)
    }
}
