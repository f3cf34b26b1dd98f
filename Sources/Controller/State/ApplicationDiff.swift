import Manifest

/// How a new manifest changes an application's services: what `deployctl apply` shows before
/// applying, and what the state machine does when it applies.
public struct ApplicationDiff: Sendable, Hashable {
    /// Services new in this manifest: their instances will be placed.
    public var added: [String] = []
    /// Services gone from this manifest: their instances will be stopped.
    public var removed: [String] = []
    /// Services whose process changes: their instances will be replaced by a rollout.
    public var replaced: [String] = []
    /// Services whose changes need no new process (count, description, labels, rollout
    /// settings, discovery): their instances move to the new revision where they run.
    public var updatedInPlace: [String] = []
    /// Services identical in both.
    public var unchanged: [String] = []
    /// Whether the manifests are equal, so that applying it creates no revision.
    public var isEmpty: Bool

    /// Compares the current manifest (nil for a new application) with a new one. Service lists
    /// come out sorted by name.
    public init(from old: Application?, to new: Application) {
        isEmpty = old == new
        let oldServices = Dictionary((old?.services ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let newNames = Set(new.services.map(\.name))
        for service in new.services.sorted(by: { $0.name < $1.name }) {
            guard let previous = oldServices[service.name] else {
                added.append(service.name)
                continue
            }
            if previous == service {
                unchanged.append(service.name)
            } else if Self.processDefinition(previous) == Self.processDefinition(service) {
                updatedInPlace.append(service.name)
            } else {
                replaced.append(service.name)
            }
        }
        removed = oldServices.keys.filter { !newNames.contains($0) }.sorted()
    }

    /// The service without the fields a running instance does not depend on. Nomad makes the
    /// same split between in-place and destructive updates (scheduler/util.go, tasksUpdated):
    /// a count or metadata change must not restart anything. Placement is not among them: a
    /// changed constraint re-places instances, so that none is left on a node it now excludes.
    static func processDefinition(_ service: Service) -> Service {
        var definition = service
        definition.replicas = 0
        definition.description = ""
        definition.labels = StringMap()
        definition.update = UpdateStrategy()
        definition.discovery = Discovery()
        definition.disconnect = DisconnectPolicy()
        return definition
    }
}
