/// Where a value stands in a manifest, written the way a reader would point at it:
/// `services[1].health.interval`, `services[0].labels["app.kubernetes.io/name"]`.
///
/// A path is a linked list from the value up to the document, so that stepping into a member
/// costs one small allocation however deep the value is; the reader makes one for every value.
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    /// One step from a container to a value inside it.
    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    private final class Node: Sendable {
        let parent: Node?
        let component: Component

        init(parent: Node?, component: Component) {
            self.parent = parent
            self.component = component
        }
    }

    private let last: Node?

    private init(last: Node?) {
        self.last = last
    }

    /// The document itself.
    public static let root = JSONPath(last: nil)

    public init(components: [Component]) {
        var node: Node?
        for component in components { node = Node(parent: node, component: component) }
        last = node
    }

    /// The steps from the document to the value.
    public var components: [Component] {
        var result: [Component] = []
        var node = last
        while let current = node {
            result.append(current.component)
            node = current.parent
        }
        return result.reversed()
    }

    /// The path of a member of the object at this path.
    public func appending(_ key: String) -> JSONPath {
        JSONPath(last: Node(parent: last, component: .key(key)))
    }

    /// The path of an element of the array at this path.
    public func appending(_ index: Int) -> JSONPath {
        JSONPath(last: Node(parent: last, component: .index(index)))
    }

    public static func == (lhs: JSONPath, rhs: JSONPath) -> Bool {
        lhs.last === rhs.last || lhs.components == rhs.components
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(components)
    }

    public var description: String {
        var text = ""
        for component in components {
            switch component {
            case .index(let index):
                text += "[\(index)]"
            case .key(let key):
                if Self.isPlainIdentifier(key) {
                    text += text.isEmpty ? key : "." + key
                } else {
                    var quoted = ""
                    JSONWriter.writeString(key, into: &quoted)
                    text += "[\(quoted)]"
                }
            }
        }
        return text.isEmpty ? "(document)" : text
    }

    private static func isPlainIdentifier(_ key: String) -> Bool {
        guard let first = key.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return key.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "$")
        }
    }
}
