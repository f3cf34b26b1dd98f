import Foundation
import Testing

/// Runs every `testdata/*.txt` scenario and compares each command's output with the file.
/// `RAFT_SCENARIO_REWRITE=1` writes the actual outputs back instead; review the diff by hand:
/// the files are the specification.
@Suite struct ScenarioTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("testdata")

    static var files: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted()
    }

    @Test(arguments: files)
    func scenario(_ name: String) throws {
        let path = Self.directory.appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let file = try ScenarioFile(parsing: text, path: path)
        let cluster = ScenarioCluster()
        var outputs: [[String]] = []
        for step in file.steps {
            let output: [String]
            do {
                output = try cluster.run(step.command)
            } catch {
                output = ["harness error: \(error)"]
            }
            outputs.append(output)
        }
        if ProcessInfo.processInfo.environment["RAFT_SCENARIO_REWRITE"] == "1" {
            try file.rendered(outputs: outputs).write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        for (step, output) in zip(file.steps, outputs) where output != step.expected {
            Issue.record("""
                \(name):\(step.lineNumber): \(step.command)
                expected:
                \(step.expected.joined(separator: "\n"))
                actual:
                \(output.joined(separator: "\n"))
                """)
            // Later steps depend on this one; one mismatch is enough to read.
            return
        }
    }

    @Test func scenariosExist() {
        #expect(Self.files.count >= 12, "expected one scenario file per behaviour, found \(Self.files)")
    }
}
