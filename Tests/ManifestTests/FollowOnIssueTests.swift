import Manifest
import Testing

/// A manifest whose only service is `{"name": "web", "command": ["/bin/true"], <fields>}`.
private func service(_ fields: String) -> String {
    #"{"name": "app", "services": [{"name": "web", "command": ["/bin/true"], \#(fields)}]}"#
}

/// Checks across fields are skipped when a field they compare is itself invalid: only the root
/// problem is reported, not a follow-on that compares with a broken value or with the default
/// put in its place (`replicas: -1` once gave also `canaries: 0 is more than replicas (-1)`).
@Suite struct FollowOnIssueTests {
    static let cases: [InvalidCase] = [
        // Instances and rollout.
        InvalidCase(service(#""replicas": -1"#), "services[0].replicas", "out of range"),
        InvalidCase(service(#""replicas": -1, "update": {"canaries": 1}"#), "services[0].replicas", "out of range"),
        InvalidCase(service(#""replicas": "3", "update": {"canaries": 2}"#), "services[0].replicas", "not a string"),
        InvalidCase(service(#""replicas": 3, "update": {"canaries": 20000}"#), "services[0].update.canaries", "out of range"),
        InvalidCase(service(#""update": {"healthyDeadline": "0s"}"#), "services[0].update.healthyDeadline", "longer than zero"),
        InvalidCase(service(#""update": {"progressDeadline": "0s"}"#), "services[0].update.progressDeadline", "longer than zero"),
        InvalidCase(service(#""update": {"minHealthyTime": "10m", "healthyDeadline": "5"}"#), "services[0].update.healthyDeadline", "no unit"),
        // Restarts and health.
        InvalidCase(service(#""restart": {"initialDelay": "2m", "maxDelay": "10"}"#), "services[0].restart.maxDelay", "no unit"),
        InvalidCase(service(#""restart": {"initialDelay": "2m", "maxDelay": "-1s"}"#), "services[0].restart.maxDelay", "negative"),
        InvalidCase(service(#""health": {"exec": {"command": ["/x"]}, "interval": "abc", "timeout": "20s"}"#), "services[0].health.interval", "not a duration"),
        InvalidCase(service(#""health": {"exec": {"command": ["/x"]}, "interval": "0s"}"#), "services[0].health.interval", "longer than zero"),
        InvalidCase(service(#""readiness": "health", "health": {"interval": "5s"}"#), "services[0].health", "needs a probe"),
        // Resources.
        InvalidCase(service(#""resources": {"cpu": 0, "reserve": {"cpu": 0.5}}"#), "services[0].resources.cpu", "out of range"),
        InvalidCase(service(#""resources": {"cpu": "0.5", "reserve": {"cpu": 2}}"#), "services[0].resources.cpu", "not a string"),
        InvalidCase(service(#""resources": {"cpu": 0.5, "reserve": {"cpu": 2000}}"#), "services[0].resources.reserve.cpu", "out of range"),
        InvalidCase(service(#""resources": {"memory": "2Mi", "reserve": {"memory": "3Mi"}}"#), "services[0].resources.memory", "below the minimum"),
        InvalidCase(service(#""resources": {"memory": "lots", "reserve": {"memory": "1Gi"}}"#), "services[0].resources.memory", "not a size"),
        InvalidCase(service(#""resources": {"cpu": 2000.0001}"#), "services[0].resources.cpu", "out of range"),
        // Port references and namespaces.
        InvalidCase(service(#""network": {"ports": [{"port": 8080}]}, "health": {"tcp": {"port": "http"}}"#), "services[0].network.ports[0].name", "is required"),
        InvalidCase(service(#""network": "host", "discovery": {"port": "http"}"#), "services[0].network", "must be an object"),
        InvalidCase(service(#""network": {"mode": "bridge"}, "isolation": {"namespaces": ["mount", "net"]}"#), "services[0].network.mode", "not a valid network mode"),
    ]

    @Test(arguments: cases)
    func onlyTheRootProblemIsReported(_ invalid: InvalidCase) {
        let found = issues(of: invalid.manifest)
        #expect(found.count == 1, "expected only the root problem; got:\n\(found.map(\.description).joined(separator: "\n"))")
        #expect(found.first?.path.description == invalid.path)
        for word in invalid.words {
            #expect(found.first?.message.contains(word) == true, "\(found.first?.description ?? "nothing") lacks \"\(word)\"")
        }
    }

    /// The checks still run when every field they compare is valid, whatever else is broken.
    @Test func crossChecksStillRunBesideUnrelatedProblems() {
        let text = service(#""replicas": 2, "update": {"canaries": 3, "autoRevert": "yes"}, "network": {"ports": [{"name": "http", "port": 70000}]}, "health": {"tcp": {"port": "htp"}}"#)
        let paths = Set(issues(of: text).map(\.path.description))
        #expect(paths == ["services[0].update.canaries", "services[0].update.autoRevert", "services[0].network.ports[0].port", "services[0].health.tcp.port"])
    }
}
