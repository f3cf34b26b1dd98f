import Foundation
import Testing
import TestSupport

/// Runs the built `deployctl` (it sits beside the test bundle in the build directory).
/// `killAfter`: SIGKILLed if still running then (a command that should have ended).
func runDeployctl(_ arguments: [String], input: String? = nil, killAfter: Duration? = nil) throws
    -> (status: Int32, output: String, error: String)
{
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("deployctl")
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
    var environment = ProcessInfo.processInfo.environment
    environment["NO_COLOR"] = "1"
    process.environment = environment
    let output = Pipe()
    let error = Pipe()
    let inputPipe = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = inputPipe
    try process.run()
    if let killAfter {
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(killAfter.components.seconds) * 1_000_000_000)) {
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }
    if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try inputPipe.fileHandleForWriting.close()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
    return path
}()

@Suite(.dedicatedThread) struct DeployctlValidateTests {
    @Test func validExamplesExitZero() throws {
        let result = try runDeployctl(["validate", "manifests/web.json", "manifests/worker.json", "manifests/shop.json", "manifests/batch.json"])
        #expect(result.status == 0, "\(result)")
        #expect(result.output.contains("valid  manifests/web.json: application \"web\", 1 service, 3 instances"))
    }

    @Test func invalidManifestExitsOneWithLocatedProblems() throws {
        let result = try runDeployctl(["validate", "manifests/invalid/web-typos.json"])
        #expect(result.status == 1)
        #expect(result.output.contains(#"services[0].health.interval: "5" has no unit; write "5s""#))
        #expect(result.output.contains(#"services[0].comand: unknown field; did you mean "command"?"#))
    }

    @Test func jsonOutputCarriesPathsAndMessages() throws {
        let result = try runDeployctl(["validate", "-o", "json", "-"], input: #"{"name": "a", "services": [{"name": "s", "command": ["/x"], "replicas": -2}]}"#)
        #expect(result.status == 1)
        let document = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(document?["valid"] as? Bool == false)
        let files = document?["files"] as? [[String: Any]]
        let issues = files?.first?["issues"] as? [[String: String]]
        #expect(issues?.first?["path"] == "services[0].replicas")
        #expect(issues?.first?["message"]?.contains("out of range") == true)
    }

    @Test func unreadableFileExitsTwo() throws {
        let result = try runDeployctl(["validate", "manifests/web.json", "/nonexistent/manifest.json"])
        #expect(result.status == 2)
        #expect(result.error.contains("cannot read /nonexistent/manifest.json: No such file or directory"))
    }

    @Test func usageErrorExitsTwo() throws {
        #expect(try runDeployctl(["validate"]).status == 2)
        #expect(try runDeployctl(["validate", "-o", "yaml", "manifests/web.json"]).status == 2)
        #expect(try runDeployctl(["no-such-command"]).status == 2)
    }

    @Test func helpAndVersionExitZero() throws {
        let help = try runDeployctl(["--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("validate"))
        #expect(try runDeployctl(["--version"]).status == 0)
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScripts(shell: String) throws {
        let result = try runDeployctl(["--generate-completion-script", shell])
        #expect(result.status == 0)
        #expect(result.output.contains("validate"))
        #expect(result.output.contains("schema"))
    }

    /// No agent where deployctl looks: exit 3 at once, saying where it looked and what to do
    /// (not a connect error's internals, and not after a minute of retries).
    @Test func noAgentSaysWhereItLookedAndExitsThree() throws {
        let started = ContinuousClock.now
        let missing = try runDeployctl(["status", "--address", "/tmp/flotilla-no-such-agent.sock"])
        #expect(missing.status == 3)
        #expect(missing.error.contains("no agent socket at /tmp/flotilla-no-such-agent.sock"), "\(missing.error)")
        #expect(!missing.error.contains("errno"), "\(missing.error)")
        let refused = try runDeployctl(["status", "--address", "http://127.0.0.1:1"])
        #expect(refused.status == 3)
        #expect(refused.error.contains("cannot reach the agent at http://127.0.0.1:1: Connection refused"), "\(refused.error)")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func schemaCommandPrintsTheCommittedSchema() throws {
        let result = try runDeployctl(["schema"])
        #expect(result.status == 0)
        let committed = try String(contentsOfFile: repositoryRoot + "/manifests/schema.json", encoding: .utf8)
        #expect(result.output == committed)
    }
}

/// Following commands against an agent that was never reached.
@Suite(.dedicatedThread) struct DeployctlFollowTests {
    /// `events --follow` waits out an agent that goes away after answering (a restart), but one
    /// never reached is a wrong address or trust more likely than a restart: it says so at once
    /// with exit 3, instead of "asking again" for ever.
    @Test func eventsFollowExitsWhenTheAgentWasNeverReached() throws {
        let started = ContinuousClock.now
        let missing = "/tmp/flotilla-no-agent-\(UInt32.random(in: 0...UInt32.max)).sock"
        let result = try runDeployctl(["events", "--follow", "--address", missing], killAfter: .seconds(20))
        #expect(result.status == 3, "\(result)")
        #expect(result.error.contains("no agent socket at \(missing)"), "\(result)")
        #expect(ContinuousClock.now - started < .seconds(20))
    }
}
