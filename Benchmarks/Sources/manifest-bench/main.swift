import Foundation
import Manifest

// Decodes and validates a manifest of 1,000 services (the shop example's services, renamed), in
// the same run as the peer: Foundation's JSONDecoder decoding the same text into an equivalent
// Codable model (CodableManifest.swift). JSONSerialization building untyped objects, the peer
// before issue 11, is still printed for comparison with the older figures.

func makeManifest(services count: Int) throws -> [UInt8] {
    let example = try String(contentsOfFile: CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "manifests/shop.json", encoding: .utf8)
    guard case .object(let application) = try JSONParser.parse(example), case .array(let services)? = application["services"] else {
        fatalError("the example has no services")
    }
    var generated: [JSONValue] = []
    for index in 0..<count {
        guard case .object(var service) = services[index % services.count] else { continue }
        service.members = service.members.map { $0.key == "name" ? JSONObject.Member("name", .string("svc-\(index)")) : $0 }
        service.members = service.members.filter { $0.key != "discovery" }
        generated.append(.object(service))
    }
    let document: JSONValue = ["name": "big", "services": .array(generated)]
    return Array(JSONWriter.pretty(document).utf8)
}

/// This thread's CPU time in milliseconds: the work is single-threaded, and CPU time does not
/// count the time other processes on a busy machine take the core away.
func threadCPUMilliseconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) * 1000 + Double(time.tv_nsec) / 1e6
}

/// The thread CPU time `body` takes, in milliseconds.
func cpuMilliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = threadCPUMilliseconds()
    try body()
    return threadCPUMilliseconds() - start
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

let bytes = try makeManifest(services: 1000)
let data = Data(bytes)
// Warm up every path, and check that both typed decoders read the same services.
let decoded = try ManifestDecoder.decode(bytes)
let codable = try JSONDecoder().decode(CodableApplication.self, from: data)
_ = try JSONSerialization.jsonObject(with: data)
guard decoded.services.map(\.name) == codable.services.map(\.name), codable.services.count == 1000 else {
    fatalError("the two decoders disagree on the services")
}

// Interleaved, one run of each in turn, so that the machine's speed changing over the run
// falls on all of them alike.
let iterations = 50
var ours: [Double] = [], parseOnly: [Double] = [], peer: [Double] = [], untyped: [Double] = []
for _ in 0..<iterations {
    ours.append(try cpuMilliseconds { _ = try ManifestDecoder.decode(bytes) })
    parseOnly.append(try cpuMilliseconds { _ = try JSONParser.parse(bytes) })
    peer.append(try cpuMilliseconds { _ = try JSONDecoder().decode(CodableApplication.self, from: data) })
    untyped.append(try cpuMilliseconds { _ = try JSONSerialization.jsonObject(with: data) })
}
ours.sort()
parseOnly.sort()
peer.sort()
untyped.sort()

print("manifest of 1000 services, \(bytes.count / 1024) KiB, \(iterations) runs each, thread CPU time")
print(String(format: "  Flotilla decode + validate   median %7.2f ms   p90 %7.2f ms   (goal < 50 ms)", percentile(ours, 0.5), percentile(ours, 0.9)))
print(String(format: "  Flotilla JSON parse only     median %7.2f ms", percentile(parseOnly, 0.5)))
print(String(format: "  Foundation JSONDecoder       median %7.2f ms   p90 %7.2f ms   (Codable model, the peer)",
             percentile(peer, 0.5), percentile(peer, 0.9)))
print(String(format: "  Foundation JSONSerialization median %7.2f ms   (untyped objects, the peer before issue 11)",
             percentile(untyped, 0.5)))
print(String(format: "  ratio decode+validate / JSONDecoder: %.2fx", percentile(ours, 0.5) / percentile(peer, 0.5)))
print(String(format: "  (ratio decode+validate / JSONSerialization: %.2fx)", percentile(ours, 0.5) / percentile(untyped, 0.5)))
