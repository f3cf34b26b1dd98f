/// Order statistics of a sample of durations, in microseconds.
struct Summary {
    var median: Double
    var p10: Double
    var p90: Double
    var count: Int

    init(_ samples: [Duration]) {
        let sorted = samples.map { Double($0.components.seconds) * 1e6 + Double($0.components.attoseconds) / 1e12 }.sorted()
        count = sorted.count
        func at(_ fraction: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
        }
        median = at(0.5)
        p10 = at(0.1)
        p90 = at(0.9)
    }

    var text: String {
        "median \(format(median)) µs   p10 \(format(p10))   p90 \(format(p90))   (n=\(count))"
    }
}

func format(_ value: Double, decimals: Int = 0) -> String {
    var text = String(Int((value * pow10(decimals)).rounded()))
    if decimals > 0 {
        while text.count <= decimals { text = "0" + text }
        text.insert(".", at: text.index(text.endIndex, offsetBy: -decimals))
    }
    return text
}

private func pow10(_ n: Int) -> Double {
    (0..<n).reduce(1.0) { value, _ in value * 10 }
}
