import Manifest
import Testing

/// A manifest whose only service is `{"name": "web", "command": ["/bin/true"], <fields>}`.
private func service(_ fields: String) -> String {
    #"{"name": "app", "services": [{"name": "web", "command": ["/bin/true"]\#(fields.isEmpty ? "" : ", " + fields)}]}"#
}

/// One invalid manifest, the path its problem must be reported at, and words the message must hold.
struct InvalidCase: CustomTestStringConvertible, Sendable {
    var manifest: String
    var path: String
    var words: [String]

    init(_ manifest: String, _ path: String, _ words: String...) {
        self.manifest = manifest
        self.path = path
        self.words = words
    }

    var testDescription: String { "\(path): \(words.joined(separator: " … "))" }
}

private let cases: [InvalidCase] = [
    // The document and the application.
    InvalidCase(#"[]"#, "(document)", "must be an object (Application)"),
    InvalidCase(#"{"name": "app"}"#, "services", "is required"),
    InvalidCase(#"{"name": "app", "services": []}"#, "services", "must not be empty"),
    InvalidCase(#"{"services": [{"name": "a", "command": ["/x"]}]}"#, "name", "is required", "for example"),
    InvalidCase(#"{"name": "My App", "services": [{"name": "a", "command": ["/x"]}]}"#, "name", "lowercase letters, digits and '-'", #"write "my-app""#),
    InvalidCase(#"{"name": "app", "version": 2, "services": [{"name": "a", "command": ["/x"]}]}"#, "version", "out of range", "from 1 to 1"),
    InvalidCase(#"{"name": "app", "servics": [], "services": [{"name": "a", "command": ["/x"]}]}"#, "servics", "unknown field", #"did you mean "services"?"#),
    InvalidCase(#"{"name": "app", "labels": {"-bad": "x"}, "services": [{"name": "a", "command": ["/x"]}]}"#, #"labels["-bad"]"#, "not a valid label key"),
    InvalidCase(#"{"name": "app", "services": [{"name": "a", "command": ["/x"]}, {"name": "a", "command": ["/y"]}]}"#, "services[1].name", #""a" is already the name of services[0]"#, "unique"),
    InvalidCase(#"{"name": "app", "services": {"name": "a"}}"#, "services", "must be an array, not an object"),
    // Keys of the key-value store given to the service.
    InvalidCase(service(#""kv": [{"key": "a/b"}]"#), "services[0].kv[0].env", "is required unless file is given"),
    InvalidCase(service(#""kv": [{"key": "a/b", "env": "A", "file": "/etc/a"}]"#), "services[0].kv[0].file", "either as env or as file, not both"),
    InvalidCase(service(#""kv": [{"key": "a/../b", "env": "A"}]"#), "services[0].kv[0].key", "a key has no .. segment"),
    InvalidCase(service(#""kv": [{"key": "/a", "env": "A"}]"#), "services[0].kv[0].key", "does not start with /"),
    InvalidCase(service(#""kv": [{"key": "a", "env": "1A"}]"#), "services[0].kv[0].env", "environment"),
    InvalidCase(service(#""kv": [{"key": "a", "file": "etc/a"}]"#), "services[0].kv[0].file", "absolute"),
    InvalidCase(service(#""env": {"A": "x"}, "kv": [{"key": "a", "env": "A"}]"#), "services[0].kv[0].env", "also set in env"),
    InvalidCase(service(#""kv": [{"key": "a", "env": "A"}, {"key": "b", "env": "A"}]"#), "services[0].kv[1].env", "already given by another binding"),
    InvalidCase(service(#""kv": [{"key": "a", "file": "/etc/a"}, {"key": "b", "file": "/etc/a"}]"#), "services[0].kv[1].file", "already mounted"),
    // Identity.
    InvalidCase(#"{"name": "app", "services": [{"command": ["/x"]}]}"#, "services[0].name", "is required"),
    InvalidCase(#"{"name": "app", "services": [{"name": "Web", "command": ["/x"]}]}"#, "services[0].name", "must be lowercase", #"write "web""#),
    InvalidCase(#"{"name": "app", "services": [{"name": "1web", "command": ["/x"]}]}"#, "services[0].name", "must start with a letter"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web-", "command": ["/x"]}]}"#, "services[0].name", "must not end with '-'"),
    InvalidCase(#"{"name": "app", "services": [{"name": "\#(String(repeating: "a", count: 64))", "command": ["/x"]}]}"#, "services[0].name", "longer than 63 characters"),
    InvalidCase(service(#""labels": {"tier": 3}"#), "services[0].labels.tier", "must be a string", #"write "3""#),
    InvalidCase(service(#""descripton": "x""#), "services[0].descripton", "unknown field", #"did you mean "description"?"#),
    InvalidCase(service(#""zzz": 1"#), "services[0].zzz", "unknown field; remove it", "Service has:"),
    // Images.
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "Busybox"}]}"#, "services[0].image", "not an image reference", "lowercase", "registry.example:5000/team/web:1.4"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "busybox@sha256:abc"}]}"#, "services[0].image", "64 lowercase hex digits"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "busybox:"}]}"#, "services[0].image", "the tag after ':' is empty"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "reg.example:99999/web"}]}"#, "services[0].image", "invalid port"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "team//web"}]}"#, "services[0].image", "a path component is empty"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "busybox", "rootfs": "/srv/root"}]}"#, "services[0].rootfs", "cannot be set with image"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "image": "busybox", "command": []}]}"#, "services[0].command", "must not be empty"),
    // Process.
    InvalidCase(#"{"name": "app", "services": [{"name": "web"}]}"#, "services[0].command", "is required without an image"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "command": []}]}"#, "services[0].command", "must not be empty"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "command": "/bin/true"}]}"#, "services[0].command", "must be an array", #"write ["/bin/true"]"#),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "command": ["", "x"]}]}"#, "services[0].command[0]", "program must not be empty"),
    InvalidCase(#"{"name": "app", "services": [{"name": "web", "command": ["/x", 5]}]}"#, "services[0].command[1]", "must be a string", #"write "5""#),
    InvalidCase(service(#""env": {"1ABC": "x"}"#), #"services[0].env["1ABC"]"#, "not a valid environment variable name", #"write "_1ABC""#),
    InvalidCase(service(#""env": {"NOTIFY_SOCKET": "/x"}"#), "services[0].env.NOTIFY_SOCKET", "set by Flotilla itself"),
    InvalidCase(service(#""env": {"PORT_HTTP": "80"}, "network": {"ports": [{"name": "http"}]}"#), "services[0].env.PORT_HTTP", "set by Flotilla", "network.ports[0]"),
    InvalidCase(service(#""workingDir": "srv""#), "services[0].workingDir", "not absolute", #"write "/srv""#),
    InvalidCase(service(#""workingDir": "/srv/../etc""#), "services[0].workingDir", "contains '..'"),
    InvalidCase(service(#""workingDir": "/srv//data/""#), "services[0].workingDir", "not in normal form", #"write "/srv/data""#),
    InvalidCase(service(#""user": "bad user""#), "services[0].user", "not a user or group name"),
    InvalidCase(service(#""user": -1"#), "services[0].user", "not a valid id"),
    InvalidCase(service(#""group": true"#), "services[0].group", "must be a name", "or a number"),
    InvalidCase(service(#""stopSignal": "SIGTREM""#), "services[0].stopSignal", "not a valid stop signal", #"did you mean "SIGTERM"?"#),
    InvalidCase(service(#""stopTimeout": 10"#), "services[0].stopTimeout", "has no unit", #"write "10s""#),
    // Filesystem.
    InvalidCase(service(#""rootfs": "images/busybox""#), "services[0].rootfs", "not absolute", "or \"host\""),
    InvalidCase(service(#""rootfs": "/""#), "services[0].rootfs", "write \"host\""),
    InvalidCase(service(#""mounts": [{"type": "bind", "target": "/data"}]"#), "services[0].mounts[0].source", "is required for a bind mount"),
    InvalidCase(service(#""mounts": [{"type": "tmpfs", "source": "/x", "target": "/tmp"}]"#), "services[0].mounts[0].source", "does not apply to tmpfs"),
    InvalidCase(service(#""mounts": [{"type": "bind", "source": "/x", "target": "/d", "size": "1Mi"}]"#), "services[0].mounts[0].size", "only to tmpfs"),
    InvalidCase(service(#""mounts": [{"type": "nfs", "target": "/d"}]"#), "services[0].mounts[0].type", "not a valid mount type"),
    InvalidCase(service(#""mounts": [{"type": "tmpfs", "target": "/proc"}]"#), "services[0].mounts[0].target", "set up by Flotilla itself"),
    InvalidCase(service(#""mounts": [{"type": "tmpfs", "target": "/t"}, {"type": "tmpfs", "target": "/t"}]"#), "services[0].mounts[1].target", "already the target of mounts[0]"),
    InvalidCase(service(#""mounts": [{"type": "tmpfs", "target": "/t", "size": "lots"}]"#), "services[0].mounts[0].size", "not a size"),
    InvalidCase(service(#""readOnlyRootfs": "true""#), "services[0].readOnlyRootfs", "must be a boolean", "without quotes"),
    // Isolation.
    InvalidCase(service(#""isolation": {"namespaces": ["pid", "pdi", "mount"]}"#), "services[0].isolation.namespaces[1]", "not a valid namespace", #"did you mean "pid"?"#),
    InvalidCase(service(#""isolation": {"namespaces": ["pid"]}"#), "services[0].isolation.namespaces", "must include \"mount\""),
    InvalidCase(service(#""isolation": {"namespaces": ["mount", "pid", "pid"]}"#), "services[0].isolation.namespaces[2]", "listed twice"),
    InvalidCase(service(#""isolation": {"namespaces": ["mount"]}, "network": {"mode": "private"}"#), "services[0].isolation.namespaces", "lacks \"net\"", "private"),
    InvalidCase(service(#""isolation": {"namespaces": ["mount", "net"]}"#), "services[0].isolation.namespaces", "has \"net\"", "network.mode is \"host\""),
    InvalidCase(service(#""isolation": {"namespaces": ["mount"], "hostname": "web"}"#), "services[0].isolation.hostname", "needs the \"uts\" namespace"),
    InvalidCase(service(#""isolation": {"hostname": "web_1"}"#), "services[0].isolation.hostname", "not a valid host name"),
    InvalidCase(service(#""isolation": {"capabilities": ["CAP_NET_BIND_SERVCE"]}"#), "services[0].isolation.capabilities[0]", "not a Linux capability", #"did you mean "CAP_NET_BIND_SERVICE"?"#),
    InvalidCase(service(#""isolation": {"capabilities": ["ALL"]}"#), "services[0].isolation.capabilities[0]", "list the capabilities"),
    InvalidCase(service(#""isolation": {"capabilities": ["NET_ADMIN", "CAP_NET_ADMIN"]}"#), "services[0].isolation.capabilities[1]", "listed twice"),
    InvalidCase(service(#""isolation": {"seccomp": "none"}"#), "services[0].isolation.seccomp", "not a valid seccomp profile", "default, unconfined"),
    InvalidCase(service(#""isolation": {"rlimits": {"nofile": {"soft": 10, "hard": 5}}}"#), "services[0].isolation.rlimits.nofile.soft", "above the hard limit"),
    InvalidCase(service(#""isolation": {"rlimits": {"nofiles": 10}}"#), "services[0].isolation.rlimits.nofiles", "unknown field", #"did you mean "nofile"?"#),
    InvalidCase(service(#""isolation": {"rlimits": {"nproc": -1}}"#), "services[0].isolation.rlimits.nproc", "zero or more", "unlimited"),
    InvalidCase(service(#""isolation": {"rlimits": {"core": {"soft": 0}}}"#), "services[0].isolation.rlimits.core", "needs both \"soft\" and \"hard\""),
    InvalidCase(service(#""isolation": {"noNewPrivileges": 1}"#), "services[0].isolation.noNewPrivileges", "must be true or false"),
    InvalidCase(service(#""isolation": {"namespaces": ["mount", "user"], "uidMappings": []}"#), "services[0].isolation.uidMappings", "must not be empty with the \"user\" namespace"),
    InvalidCase(service(#""isolation": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 10}]}"#), "services[0].isolation.uidMappings[1]", "overlaps"),
    InvalidCase(service(#""isolation": {"gidMappings": [{"containerID": 0, "hostID": 4294967290, "size": 10}]}"#), "services[0].isolation.gidMappings[0].size", "runs past the last id"),
    // Resources.
    InvalidCase(service(#""resources": {"memory": "2Mi"}"#), "services[0].resources.memory", "below the minimum of 4Mi"),
    InvalidCase(service(#""resources": {"memory": 1000}"#), "services[0].resources.memory", "below the minimum of 4Mi"),
    InvalidCase(service(#""resources": {"memory": "128"}"#), "services[0].resources.memory", "has no unit", "128Mi"),
    InvalidCase(service(#""resources": {"cpu": 0}"#), "services[0].resources.cpu", "out of range", "above 0"),
    InvalidCase(service(#""resources": {"cpu": "0.5"}"#), "services[0].resources.cpu", "must be a number, not a string"),
    InvalidCase(service(#""resources": {"cpu": 0.0001}"#), "services[0].resources.cpu", "at most 3 decimals"),
    InvalidCase(service(#""resources": {"pids": 0}"#), "services[0].resources.pids", "out of range"),
    InvalidCase(service(#""resources": {"cpu": 0.5, "reserve": {"cpu": 1}}"#), "services[0].resources.reserve.cpu", "more than the cpu limit"),
    InvalidCase(service(#""resources": {"memory": "64Mi", "reserve": {"memory": "1Gi"}}"#), "services[0].resources.reserve.memory", "more than the memory limit 64Mi"),
    // Network.
    InvalidCase(service(#""network": {"mode": "bridge"}"#), "services[0].network.mode", "not a valid network mode", "host, private"),
    InvalidCase(service(#""network": {"ports": [{"name": "http", "port": 70000}]}"#), "services[0].network.ports[0].port", "out of range", "1 to 65535"),
    InvalidCase(service(#""network": {"ports": [{"name": "http", "port": 80}, {"name": "web", "port": 80}]}"#), "services[0].network.ports[1].port", "already used by ports[0]"),
    InvalidCase(service(#""network": {"ports": [{"name": "http"}, {"name": "http"}]}"#), "services[0].network.ports[1].name", "already the name of ports[0]"),
    InvalidCase(service(#""network": {"ports": [{"name": "http_port"}]}"#), "services[0].network.ports[0].name", "only lowercase letters, digits and '-'"),
    InvalidCase(service(#""network": {"ports": [{"name": "a-very-long-port-name"}]}"#), "services[0].network.ports[0].name", "longer than 15 characters"),
    InvalidCase(service(#""network": {"ports": [{"port": 80}]}"#), "services[0].network.ports[0].name", "is required"),
    // Instances.
    InvalidCase(service(#""replicas": -1"#), "services[0].replicas", "out of range", "0 to 10000"),
    InvalidCase(service(#""replicas": 2.5"#), "services[0].replicas", "whole number"),
    InvalidCase(service(#""replicas": "3""#), "services[0].replicas", "not a string", "write 3 without quotes"),
    // Health.
    InvalidCase(service(#""health": {"interval": "5s"}"#), "services[0].health", "needs a probe"),
    InvalidCase(service(#""health": {"http": {"port": "http"}, "tcp": {"port": "http"}}, "network": {"ports": [{"name": "http"}]}"#), "services[0].health.tcp", "only one probe"),
    InvalidCase(service(#""health": {"http": {"port": "htp"}}, "network": {"ports": [{"name": "http"}]}"#), "services[0].health.http.port", "not a port of this service", #"did you mean "http"?"#),
    InvalidCase(service(#""health": {"tcp": {"port": "db"}}"#), "services[0].health.tcp.port", "declares no ports"),
    InvalidCase(service(#""health": {"tcp": {"port": "dns"}}, "network": {"ports": [{"name": "dns", "protocol": "udp"}]}"#), "services[0].health.tcp.port", "udp port", "needs a tcp port"),
    InvalidCase(service(#""health": {"http": {"port": "http"}, "interval": "5"}, "network": {"ports": [{"name": "http"}]}"#), "services[0].health.interval", #""5" has no unit; write "5s""#),
    InvalidCase(service(#""health": {"exec": {"command": ["/x"]}, "interval": "0s"}"#), "services[0].health.interval", "longer than zero"),
    InvalidCase(service(#""health": {"exec": {"command": ["/x"]}, "interval": "-5s"}"#), "services[0].health.interval", "negative"),
    InvalidCase(service(#""health": {"exec": {"command": ["/x"]}, "interval": "1s", "timeout": "5s"}"#), "services[0].health.timeout", "longer than the interval"),
    InvalidCase(service(#""health": {"exec": {"command": []}}"#), "services[0].health.exec.command", "must not be empty"),
    InvalidCase(service(#""health": {"http": {"port": "http", "path": "healthz"}}, "network": {"ports": [{"name": "http"}]}"#), "services[0].health.http.path", "must start with '/'", #"write "/healthz""#),
    InvalidCase(service(#""health": {"http": {"port": "http", "status": "399-200"}}, "network": {"ports": [{"name": "http"}]}"#), "services[0].health.http.status", "runs backwards"),
    InvalidCase(service(#""health": {"http": {"port": "http", "status": 700}}, "network": {"ports": [{"name": "http"}]}"#), "services[0].health.http.status", "outside the HTTP status codes"),
    InvalidCase(service(#""health": {"exec": {"command": ["/x"]}, "healthyThreshold": 0}"#), "services[0].health.healthyThreshold", "out of range"),
    // Readiness and watchdog.
    InvalidCase(service(#""readiness": "health""#), "services[0].readiness", "needs a health check"),
    InvalidCase(service(#""readiness": "ready""#), "services[0].readiness", "not a valid readiness mode", "exec, health, notify"),
    InvalidCase(service(#""watchdog": "0s""#), "services[0].watchdog", "longer than zero"),
    // Restart.
    InvalidCase(service(#""restart": {"policy": "alway"}"#), "services[0].restart.policy", #"did you mean "always"?"#),
    InvalidCase(service(#""restart": {"initialDelay": "1m", "maxDelay": "10s"}"#), "services[0].restart.initialDelay", "longer than maxDelay"),
    InvalidCase(service(#""restart": {"window": "0s"}"#), "services[0].restart.window", "longer than zero"),
    InvalidCase(service(#""restart": {"maxRestarts": -1}"#), "services[0].restart.maxRestarts", "out of range"),
    // Update.
    InvalidCase(service(#""replicas": 2, "update": {"canaries": 3}"#), "services[0].update.canaries", "more than replicas (2)"),
    InvalidCase(service(#""update": {"maxParallel": 0}"#), "services[0].update.maxParallel", "out of range", "1 to 10000"),
    InvalidCase(service(#""update": {"minHealthyTime": "10m", "healthyDeadline": "5m"}"#), "services[0].update.minHealthyTime", "not shorter than healthyDeadline"),
    InvalidCase(service(#""update": {"healthyDeadline": "20m"}"#), "services[0].update.progressDeadline", "not longer than healthyDeadline"),
    InvalidCase(service(#""update": {"autoRevert": "yes"}"#), "services[0].update.autoRevert", "must be true or false"),
    // Placement.
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "zone", "operator": "=", "value": "a"}]}"#), "services[0].placement.constraints[0].attribute", "not a node attribute", #""label.zone""#),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.arhc", "operator": "=", "value": "a"}]}"#), "services[0].placement.constraints[0].attribute", #"did you mean "node.arch"?"#),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.os", "operator": "==", "value": "linux"}]}"#), "services[0].placement.constraints[0].operator", "not a valid operator", #"did you mean "="?"#),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.os", "operator": "in", "value": "linux"}]}"#), "services[0].placement.constraints[0].value", "write \"values\""),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.os", "operator": "not in"}]}"#), "services[0].placement.constraints[0].values", "is required with \"not in\""),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.os", "operator": "="}]}"#), "services[0].placement.constraints[0].value", "is required with \"=\""),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.name", "operator": "regex", "value": "web-(["}]}"#), "services[0].placement.constraints[0].value", "not a valid regular expression"),
    InvalidCase(service(#""placement": {"constraints": [{"attribute": "node.kernel", "operator": "version", "value": ">= six"}]}"#), "services[0].placement.constraints[0].value", "is not a version"),
    InvalidCase(service(#""placement": {"spread": [{"attribute": "label.zone", "weight": 0}]}"#), "services[0].placement.spread[0].weight", "out of range"),
    InvalidCase(service(#""placement": {"spread": [{"attribute": "label."}]}"#), "services[0].placement.spread[0].attribute", "needs a label key"),
    // Discovery and logs.
    InvalidCase(service(#""discovery": {"port": "http"}"#), "services[0].discovery.port", "not a port of this service"),
    InvalidCase(service(#""discovery": {"name": "Web Site"}"#), "services[0].discovery.name", "lowercase letters"),
    InvalidCase(service(#""discovery": {"tags": ["v1", "v1"]}"#), "services[0].discovery.tags[1]", "listed twice"),
    InvalidCase(service(#""discovery": {"tags": ["Primary"]}"#), "services[0].discovery.tags[0]", "must be lowercase"),
    InvalidCase(service(#""logs": {"maxSize": "1Ki"}"#), "services[0].logs.maxSize", "below the minimum of 4Ki"),
    InvalidCase(service(#""logs": {"files": 0}"#), "services[0].logs.files", "out of range", "1 to 100"),
    InvalidCase(service(#""logs": {"maxSize": "10mb"}"#), "services[0].logs.maxSize", "unknown unit"),
]

@Suite struct InvalidManifestTests {
    @Test func thereAreAtLeastSixtyCases() {
        #expect(cases.count >= 60)
    }

    @Test(arguments: cases)
    func reportsProblemAtPath(_ invalid: InvalidCase) {
        let found = issues(of: invalid.manifest)
        let atPath = found.filter { $0.path.description == invalid.path }
        #expect(!atPath.isEmpty, "no issue at \(invalid.path); got:\n\(found.map(\.description).joined(separator: "\n"))")
        for issue in atPath.prefix(1) {
            for word in invalid.words {
                #expect(atPath.contains { $0.message.contains(word) }, "\(issue) lacks \"\(word)\"")
            }
        }
    }

    @Test func collectsEveryProblemAtOnce() {
        let text = service(#""replicas": "3", "stopTimeout": "5", "health": {"tcp": {"port": "db"}}, "logs": {"files": 0}, "bogus": 1"#)
        let paths = Set(issues(of: text).map(\.path.description))
        #expect(paths.isSuperset(of: ["services[0].replicas", "services[0].stopTimeout", "services[0].health.tcp.port", "services[0].logs.files", "services[0].bogus"]))
    }

    @Test func reportsSyntaxErrorsWithLineAndColumn() {
        let found = issues(of: "{\n  \"name\": \"app\",\n  \"services\": [\n}")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("line 4, column 1") == true)
    }
}
