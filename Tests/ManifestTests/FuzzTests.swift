import Manifest
import Testing
import TestSupport

/// SplitMix64: a small seeded generator, so a failing mutation can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random edits of a JSON tree: the kinds of mistakes people make, and nonsense.
struct Mutator {
    var random: SeededGenerator

    static let strangeValues: [JSONValue] = [
        .null, true, false, 0, -1, 1, 65536, .integer(.max), .integer(.min), 0.5, -0.0, 1e300, "", " ", "5", "-5s", "0s", "1m30s",
        "99999999999999999h", "128Mi", "2Mi", "1e3", "host", "/", "..", "/a/../b", "SIGTERM", "always", "in", "not in", "regex", "(",
        "label.", "node.name", "web", "Web", "http", "\u{0}", "é", .string(String(repeating: "x", count: 300)), [], [.null], ["/bin/true"], [:],
        ["soft": 1, "hard": 0], ["http": ["port": "http"]], ["type": "bind"],
    ]

    mutating func mutate(_ value: JSONValue, depth: Int = 0) -> JSONValue {
        switch value {
        case .object(var object) where !object.members.isEmpty && Int.random(in: 0..<4, using: &random) > 0:
            let index = Int.random(in: 0..<object.members.count, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                object.members.remove(at: index)
            case 1:
                var key = object.members[index].key
                if !key.isEmpty { key.remove(at: key.index(key.startIndex, offsetBy: Int.random(in: 0..<key.count, using: &random))) }
                if object[key] == nil { object.members[index].key = key }
            case 2:
                object.append("unknown\(random.next() % 100)", pick())
            case 3, 4:
                object.members[index].value = pick()
            default:
                object.members[index].value = mutate(object.members[index].value, depth: depth + 1)
            }
            return .object(object)
        case .array(var elements) where !elements.isEmpty && Int.random(in: 0..<4, using: &random) > 0:
            let index = Int.random(in: 0..<elements.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: elements.remove(at: index)
            case 1: elements.append(elements[index])
            case 2: elements[index] = pick()
            default: elements[index] = mutate(elements[index], depth: depth + 1)
            }
            return .array(elements)
        default:
            return pick()
        }
    }

    mutating func pick() -> JSONValue {
        Self.strangeValues[Int.random(in: 0..<Self.strangeValues.count, using: &random)]
    }

    /// Byte-level damage: truncation, a flipped byte, an inserted character.
    mutating func damage(_ text: [UInt8]) -> [UInt8] {
        var bytes = text
        guard !bytes.isEmpty else { return bytes }
        let index = Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: bytes.removeSubrange(index...)
        case 1: bytes[index] ^= UInt8.random(in: 1...255, using: &random)
        default:
            let inserts = Array("{}[],:\"\\ 0e-".utf8)
            bytes.insert(inserts[Int.random(in: 0..<inserts.count, using: &random)], at: index)
        }
        return bytes
    }
}

/// Whether `path` points into `document`, or at an absent member of an object that exists
/// there (where a missing required field is reported).
func locates(_ path: JSONPath, in document: JSONValue) -> Bool {
    var current = document
    for (position, component) in path.components.enumerated() {
        switch (component, current) {
        case (.key(let key), .object(let object)):
            guard let next = object[key] else { return position == path.components.count - 1 }
            current = next
        case (.index(let index), .array(let elements)):
            guard index < elements.count else { return false }
            current = elements[index]
        default:
            return false
        }
    }
    return true
}

@Suite struct FuzzTests {
    @Test(.cpuBound) func tenThousandMutationsNeverCrashAndAlwaysLocateTheirErrors() throws {
        let examples = try exampleManifestNames().map { try JSONParser.parse(try readRepositoryFile("manifests/\($0)")) }
        var accepted = 0
        var refused = 0
        for seed in 0..<UInt64(10_000) {
            var mutator = Mutator(random: SeededGenerator(state: seed))
            let example = examples[Int(seed % UInt64(examples.count))]
            var document = example
            for _ in 0..<Int.random(in: 1...3, using: &mutator.random) { document = mutator.mutate(document) }
            if seed % 10 == 0 {
                // One in ten goes through the text, damaged, to exercise the parser as well.
                let damaged = mutator.damage(Array(JSONWriter.pretty(document).utf8))
                do {
                    _ = try ManifestDecoder.decode(damaged)
                    accepted += 1
                } catch {
                    refused += 1
                    #expect(!error.issues.isEmpty && error.issues.allSatisfy { !$0.message.isEmpty }, "seed \(seed)")
                }
                continue
            }
            do {
                let application = try ManifestDecoder.decode(json: document)
                accepted += 1
                let again = try ManifestDecoder.decode(Array(application.encodedJSON().utf8))
                #expect(again == application, "seed \(seed): round trip differs")
            } catch {
                refused += 1
                #expect(!error.issues.isEmpty, "seed \(seed): refused without a reason")
                for issue in error.issues {
                    #expect(!issue.message.isEmpty, "seed \(seed): empty message at \(issue.path)")
                    #expect(locates(issue.path, in: document), "seed \(seed): \(issue) points outside the document")
                }
            }
        }
        // Both outcomes must occur, or the mutations are not testing anything.
        #expect(accepted > 100)
        #expect(refused > 5000)
    }
}
