import Supervisor

// The Supervisor module also has a class named `Supervisor`, so `Supervisor.InstanceStatus`
// cannot name its types where Controller's types of the same names are visible. This file
// imports the Supervisor module alone and gives them unambiguous names.

/// An instance as the node's supervisor sees it.
typealias SupervisedStatus = InstanceStatus
/// Something that happened to a supervised instance.
typealias SupervisorEvent = InstanceEvent
/// A captured line of an instance's output.
typealias CapturedLine = LogLine
