/// Operations of unknown outcome that the search may take in one order only.
///
/// Each such operation may take effect at any point after its call, or never, so a search that
/// tries them all at every point explores every subset of them: a few dozen timeouts on a key
/// and a failing check would never end. But two of them with the same effect are
/// interchangeable: in any linearization, the one called earlier can take the place of the
/// other (it was called before, and neither has a return to respect). So among operations with
/// the same effect, the search only ever places the earliest-called one not yet placed, and the
/// placed ones of each class are always a prefix of it: linear where it was exponential.
///
/// "The same effect" is up to values nobody observes: a value that no read returned and no CAS
/// compared against cannot be told from another such value by any operation of the history, so
/// timed-out writes of distinct, never-read values (the common case: a unique value per write)
/// form one class.
extension KeyHistory {
    /// Sets each entry's class and rank; completed operations have none.
    mutating func classifyInterchangeable() {
        var observed = Set<Int32>()
        for entry in entries {
            switch entry.step.effect {
            case .read(let value): observed.insert(value)
            case .swap(let expected, _), .compareFailed(let expected): observed.insert(expected)
            case .write: break
            }
        }
        func seen(_ value: Int32) -> Int32 { observed.contains(value) ? value : Self.unobserved }

        // Entries of unknown outcome come last, in order of call: ranks follow it.
        let unknown = entries.indices.filter { !entries[$0].isCompleted }
        var classes: [RegisterStep.Effect: Int32] = [:]
        var sizes: [Int32] = []
        for position in unknown {
            let key: RegisterStep.Effect
            switch entries[position].step.effect {
            case .write(let value): key = .write(seen(value))
            case .swap(let expected, let new): key = .swap(expected: expected, new: seen(new))
            case let other: key = other  // Reads of unknown outcome are dropped, and so never here.
            }
            let id = classes[key] ?? {
                let id = Int32(sizes.count)
                classes[key] = id
                sizes.append(0)
                return id
            }()
            entries[position].interchangeable = id
            entries[position].rank = sizes[Int(id)]
            sizes[Int(id)] += 1
        }
        interchangeableClasses = sizes.count
    }

    /// Stands for every unobserved value in a class's effect; no value has this number.
    private static let unobserved: Int32 = -1
}
