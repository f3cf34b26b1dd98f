import Manifest
import Testing

/// What the scheduler reserves: a written limit (Kubernetes' rule for requests), else a modest
/// default (as Nomad's 100 MHz), while the limits keep their defaults.
@Suite struct ResourceReservationTests {
    static func service(_ fields: String) throws -> Service {
        let text = #"{"name": "a", "services": [{"name": "s", "command": ["/bin/sleep", "1d"]\#(fields)}]}"#
        return try ManifestDecoder.decode(Array(text.utf8)).services[0]
    }

    @Test func aServiceWithoutResourcesReservesLittleAndKeepsItsLimits() throws {
        let resources = try Self.service("").resources
        #expect(resources.cpu == 1 && resources.memory == .mebibytes(256))
        #expect(resources.reservedCPU == 0.1)
        #expect(resources.reservedMemory == .mebibytes(64))
        #expect(try Self.service(#", "resources": {"pids": 64}"#).resources.reservedCPU == 0.1)
    }

    @Test func aWrittenLimitIsReservedUnlessReserveSaysLess() throws {
        let cpuOnly = try Self.service(#", "resources": {"cpu": 0.5}"#).resources
        #expect(cpuOnly.reservedCPU == 0.5 && cpuOnly.reservedMemory == .mebibytes(64))
        let memoryOnly = try Self.service(#", "resources": {"memory": "32Mi"}"#).resources
        #expect(memoryOnly.reservedCPU == 0.1 && memoryOnly.reservedMemory == .mebibytes(32))
        let reserved = try Self.service(#", "resources": {"cpu": 2, "reserve": {"cpu": 0.25}}"#).resources
        #expect(reserved.reservedCPU == 0.25 && reserved.reservedMemory == .mebibytes(64))
        // In Swift as in a manifest: a limit given is a limit written.
        #expect(Resources(cpu: 0.5).reservedCPU == 0.5 && Resources().reservedCPU == 0.1)
    }

    /// The canonical JSON writes every default out, the limits included; it must read back to
    /// the same reservation, not to the limits it now shows (a restored snapshot must reserve
    /// what the original did).
    @Test func theDefaultReservationSurvivesTheCanonicalEncoding() throws {
        let text = #"{"name": "a", "services": [{"name": "s", "command": ["/bin/sleep", "1d"]}]}"#
        let application = try ManifestDecoder.decode(Array(text.utf8))
        let again = try ManifestDecoder.decode(Array(application.encodedJSON().utf8))
        #expect(again == application)
        #expect(again.services[0].resources.reservedCPU == 0.1)
    }
}
