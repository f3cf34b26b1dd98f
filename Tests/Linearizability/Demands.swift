/// What the completed operations that could come next need the value to be, where they do not
/// fit the current one: an operation of unknown outcome is only worth placing if what it leaves
/// is one of those (the second rule in `Search`), and asking this first spares the search
/// placing each of the many that are not, to find out.
struct Demands {
    /// Values that some read would return, or some CAS expects.
    private var values: [Int32] = []
    /// Values that some failed comparison needs the value not to be.
    private var others: [Int32] = []

    init() {}

    /// Looks at the calls before the first return of `list`, with the value at `state`.
    init(_ list: EventList, _ entries: [KeyHistory.Entry], state: Int32) {
        var node = list.first
        while let operation = list.call(node) {
            let step = entries[Int(operation)].step
            if step.apply(to: state) == nil {
                switch step.effect {
                case .read(let value): values.append(value)
                case .swap(let expected, _): values.append(expected)
                case .compareFailed(let expected): others.append(expected)
                case .write: break
                }
            }
            node = list.next(node)
        }
    }

    /// Whether an operation leaving `value` could let one of them come next, or a CAS of
    /// unknown outcome that expects `value` (which may then let one of them come next).
    func want(_ value: Int32, _ unknown: UnknownCandidates) -> Bool {
        values.contains(value) || others.contains { $0 != value } || unknown.hasSwaps(expecting: value)
    }
}
