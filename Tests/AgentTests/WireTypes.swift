import AgentAPI

// The API's wire types (generated from openapi.json) by the names these tests read best with.
typealias ApplicationInfo = Components.Schemas.ApplicationInfo
typealias ClusterStatus = Components.Schemas.ClusterStatus
typealias InstanceInfo = Components.Schemas.InstanceInfo
typealias CatalogInstanceInfo = Components.Schemas.CatalogInstanceInfo
typealias CatalogServiceInfo = Components.Schemas.CatalogServiceInfo
