import Glibc

/// Owns every buffer handed to the child: C strings and arrays allocated before clone3 and freed
/// together once fl_spawn has returned (the child reads them until execve).
final class SpawnArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for allocation in allocations { free(allocation) }
    }

    /// A NUL-terminated copy of `text`.
    func string(_ text: String) -> UnsafePointer<CChar> {
        let count = text.utf8.count + 1
        let buffer = allocate(count, alignment: 1).bindMemory(to: CChar.self, capacity: count)
        var text = text
        text.withUTF8 { utf8 in
            if let base = utf8.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: utf8.count) }
        }
        buffer[count - 1] = 0
        return UnsafePointer(buffer)
    }

    /// A copy of `text`, or NULL.
    func optionalString(_ text: String?) -> UnsafePointer<CChar>? {
        text.map(string)
    }

    /// A NULL-terminated array of C strings (argv, envp).
    func stringArray(_ texts: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let pointers: [UnsafePointer<CChar>?] = texts.map(string) + [nil]
        return UnsafePointer(array(pointers))
    }

    /// A copy of `values` (at least one element's room, so the pointer is never NULL).
    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let capacity = max(values.count, 1)
        let buffer = allocate(MemoryLayout<T>.stride * capacity, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: capacity)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { buffer.initialize(from: base, count: source.count) }
        }
        return buffer
    }

    /// Raw bytes, 8-byte aligned (struct sock_filter arrays).
    func bytes(_ values: [UInt8]) -> UnsafeRawPointer {
        let buffer = allocate(max(values.count, 1), alignment: 8)
        values.withUnsafeBytes { source in
            if let base = source.baseAddress { buffer.copyMemory(from: base, byteCount: source.count) }
        }
        return UnsafeRawPointer(buffer)
    }

    private func allocate(_ size: Int, alignment: Int) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        // posix_memalign only fails for bad alignments or when memory is exhausted; like Swift's
        // own allocations, running out of memory here is not recoverable.
        guard posix_memalign(&pointer, max(alignment, MemoryLayout<UnsafeRawPointer>.alignment), size) == 0,
            let pointer
        else { fatalError("out of memory allocating \(size) bytes for a launch") }
        allocations.append(pointer)
        return pointer
    }
}
