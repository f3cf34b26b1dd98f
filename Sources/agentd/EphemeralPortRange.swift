import Controller
import Foundation

/// The kernel's range for the local ports of outgoing connections
/// (`net.ipv4.ip_local_port_range`, per network namespace). A dynamic port range that overlaps
/// it hands instances ports that outgoing connections (the local proxy's, health checks')
/// may hold at that moment: measured with rollout-bench, nginx instances given ports in
/// 50000-50999 failed their health checks under load and a rollout failed; in 20000-20999,
/// none did. Nomad's and our default ranges stay below it for this reason.
enum EphemeralPortRange {
    /// The overlap of `range` with the kernel's ephemeral ports, nil when none or unreadable.
    static func overlap(with range: PortRange, path: String = "/proc/sys/net/ipv4/ip_local_port_range") -> ClosedRange<Int>? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let bounds = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return nil }
        let low = max(bounds[0], range.lowest)
        let high = min(bounds[1], range.highest)
        return low <= high ? low...high : nil
    }

    /// The warning for an overlap, naming both ranges and the fix.
    static func warning(for range: PortRange, overlap: ClosedRange<Int>) -> String {
        "--port-range \(range.lowest)-\(range.highest) overlaps the kernel's ephemeral ports in \(overlap.lowerBound)-\(overlap.upperBound) "
            + "(net.ipv4.ip_local_port_range): an instance given one of them may find it taken by an outgoing connection; "
            + "choose a range below or above it, e.g. the default 20000-32000"
    }
}
