/// The benchmark's manifest as a Codable model, the way an application would usually read it with
/// Foundation's JSONDecoder: one struct per JSON object of the document `makeManifest` writes
/// (the shop example's two services, `discovery` left out), optionals for what a service may
/// omit, enums for closed sets. Durations and sizes stay strings: JSONDecoder has no parser for
/// them, where Flotilla's decoder parses and checks them (and every other rule of the language).
struct CodableApplication: Codable {
    var name: String
    var description: String?
    var labels: [String: String]?
    var services: [CodableService]
}

struct CodableService: Codable {
    var name: String
    var command: [String]
    var user: String?
    var group: String?
    var rootfs: String?
    var readOnlyRootfs: Bool?
    var mounts: [Mount]?
    var resources: Resources?
    var network: Network?
    var replicas: Int?
    var health: Health?
    var update: Update?
    var placement: Placement?

    struct Mount: Codable {
        enum Kind: String, Codable { case bind, tmpfs }
        var type: Kind
        var target: String
        var source: String?
        var readOnly: Bool?
        var size: String?
    }

    struct Resources: Codable {
        struct Reserve: Codable {
            var cpu: Double?
            var memory: String?
        }
        var cpu: Double?
        var memory: String?
        var pids: Int?
        var reserve: Reserve?
    }

    struct Network: Codable {
        struct Port: Codable {
            var name: String
            var number: Int?
        }
        var mode: String?
        var ports: [Port]?
    }

    struct Health: Codable {
        struct HTTP: Codable {
            var port: String
            var path: String?
        }
        struct TCP: Codable {
            var port: String
        }
        var http: HTTP?
        var tcp: TCP?
        var interval: String?
        var timeout: String?
    }

    struct Update: Codable {
        var maxParallel: Int?
        var maxSurge: Int?
        var canaries: Int?
        var minHealthyTime: String?
        var healthyDeadline: String?
        var progressDeadline: String?
        var autoRevert: Bool?
    }

    struct Placement: Codable {
        struct Constraint: Codable {
            enum Operator: String, Codable {
                case equal = "=", notEqual = "!=", `in`, notIn = "not in", regex, version
            }
            var attribute: String
            var `operator`: Operator
            var value: String?
            var values: [String]?
        }
        struct Spread: Codable {
            var attribute: String
        }
        var constraints: [Constraint]?
        var spread: [Spread]?
        var distinctNodes: Bool?
    }
}
