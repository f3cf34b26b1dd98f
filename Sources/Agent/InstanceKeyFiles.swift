import Foundation
import Manifest
import Supervisor

/// The files of an instance's key bindings (`kv` entries with `file`): each value written to
/// `<supervisor state>/kv/<instance>/<position>` and bind-mounted read-only at its path inside
/// the instance, so that nothing is written into the service's root. Removed with the instance.
struct InstanceKeyFiles {
    let root: String

    init(supervisorState: String) { root = supervisorState + "/kv" }

    /// `service` as the instance runs it, and the variables it gets: every binding whose key
    /// exists becomes a variable or a read-only bind mount of a file written here; a key that
    /// does not exist gives neither.
    func apply(_ service: Service, instance: String, values: [String: [UInt8]]) throws -> (service: Service, environment: [String: String]) {
        var service = service
        var environment: [String: String] = [:]
        for (position, binding) in service.kv.enumerated() {
            guard let value = values[binding.key] else { continue }
            if let name = binding.env {
                guard !value.contains(0), let text = String(validating: value, as: UTF8.self) else {
                    throw KeyBindingError(message: "the value of key \(binding.key) is not UTF-8 text without NUL, so it cannot be the variable \(name); give it as a file")
                }
                environment[name] = text
            }
            if let file = binding.file {
                let directory = "\(root)/\(instance)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let path = "\(directory)/\(position)"
                try Data(value).write(to: URL(fileURLWithPath: path))
                service.mounts.append(Mount(type: .bind, source: path, target: file, readOnly: true))
            }
        }
        return (service, environment)
    }

    /// Removes the instance's files, if it had any.
    func remove(instance: String) {
        try? FileManager.default.removeItem(atPath: "\(root)/\(instance)")
    }
}

/// A key binding an instance cannot be given.
struct KeyBindingError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
