import AgentAPI

// The API's wire types, generated from openapi.json, by the names deployctl's code reads best with.
typealias ApplyResult = Components.Schemas.ApplyResult
typealias ApplicationInfo = Components.Schemas.ApplicationInfo
typealias ClusterStatus = Components.Schemas.ClusterStatus
typealias CommandOutcome = Components.Schemas.CommandOutcome
typealias InstanceInfo = Components.Schemas.InstanceInfo
typealias RolloutInfo = Components.Schemas.RolloutInfo
typealias NodeInfo = Components.Schemas.NodeInfo
typealias ServiceDescription = Components.Schemas.ServiceDescription
typealias ServiceStatus = Components.Schemas.ServiceStatus

extension Components.Schemas.ApplyResult {
    /// Whether applying would change nothing.
    var isNoChange: Bool { created.isEmpty && replaced.isEmpty && updatedInPlace.isEmpty && removed.isEmpty }
}
