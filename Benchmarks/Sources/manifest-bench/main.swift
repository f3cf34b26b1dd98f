import Foundation
import Manifest

// Decodes and validates a manifest of 1,000 services (the web example's service, renamed),
// against Foundation's JSONSerialization merely parsing the same text, in the same run.

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

func measure(_ iterations: Int, _ body: () throws -> Void) rethrows -> [Double] {
    var samples: [Double] = []
    for _ in 0..<iterations {
        let start = threadCPUMilliseconds()
        try body()
        samples.append(threadCPUMilliseconds() - start)
    }
    return samples.sorted()
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

let bytes = try makeManifest(services: 1000)
let data = Data(bytes)
// Warm up both paths.
_ = try ManifestDecoder.decode(bytes)
_ = try JSONSerialization.jsonObject(with: data)

let iterations = 50
let ours = try measure(iterations) { _ = try ManifestDecoder.decode(bytes) }
let parseOnly = try measure(iterations) { _ = try JSONParser.parse(bytes) }
let peer = try measure(iterations) { _ = try JSONSerialization.jsonObject(with: data) }

print("manifest of 1000 services, \(bytes.count / 1024) KiB, \(iterations) runs each, thread CPU time")
print(String(format: "  Flotilla decode + validate   median %7.2f ms   p90 %7.2f ms   (goal < 50 ms)", percentile(ours, 0.5), percentile(ours, 0.9)))
print(String(format: "  Flotilla JSON parse only     median %7.2f ms", percentile(parseOnly, 0.5)))
print(String(format: "  Foundation JSONSerialization median %7.2f ms   (parse only, the peer)", percentile(peer, 0.5)))
print(String(format: "  ratio decode+validate / JSONSerialization parse: %.2fx", percentile(ours, 0.5) / percentile(peer, 0.5)))
