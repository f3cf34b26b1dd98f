import Foundation

/// A plain-text scenario in etcd raft's `testdata/*.txt` style: each command is followed by a
/// `----` line and the output expected from it, up to a blank line. Lines starting with `#`
/// and blank lines before a command are kept as they are.
struct ScenarioFile {
    struct Step {
        /// Comments and blank lines before the command, kept verbatim.
        var preamble: [String]
        var command: String
        var lineNumber: Int
        var expected: [String]
    }

    var steps: [Step] = []
    /// Comments after the last command.
    var trailer: [String] = []

    init(parsing text: String, path: String) throws {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var index = 0
        var preamble: [String] = []
        while index < lines.count {
            let line = lines[index]
            if line.isEmpty || line.hasPrefix("#") {
                preamble.append(line)
                index += 1
                continue
            }
            let commandLine = index + 1
            guard index + 1 < lines.count, lines[index + 1] == "----" else {
                throw ScenarioError(message: "\(path):\(commandLine): command without a ---- line")
            }
            index += 2
            var expected: [String] = []
            while index < lines.count && !lines[index].isEmpty {
                expected.append(lines[index])
                index += 1
            }
            // The blank line that ends the output belongs to this step.
            if index < lines.count { index += 1 }
            steps.append(Step(preamble: preamble, command: line, lineNumber: commandLine, expected: expected))
            preamble = []
        }
        trailer = preamble
    }

    /// The file with every step's output replaced by `outputs`.
    func rendered(outputs: [[String]]) -> String {
        var text: [String] = []
        for (step, output) in zip(steps, outputs) {
            text.append(contentsOf: step.preamble)
            text.append(step.command)
            text.append("----")
            text.append(contentsOf: output)
            text.append("")
        }
        text.append(contentsOf: trailer)
        while text.last == "" { text.removeLast() }
        return text.joined(separator: "\n") + "\n"
    }
}

struct ScenarioError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
