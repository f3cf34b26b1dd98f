import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

// ArgumentParser exits with 64 (EX_USAGE) on usage errors; our documented status for them is 2,
// so parsing and running are driven here instead of through `Deployctl.main()`.
do {
    var command = try Deployctl.parseAsRoot()
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await runAsync(&asyncCommand)
    } else {
        try command.run()
    }
} catch let status as ExitCode {
    exit(status.rawValue)
} catch {
    let code = Deployctl.exitCode(for: error)
    let message = Deployctl.fullMessage(for: error)
    if code == .success {
        if !message.isEmpty { print(message) }
        exit(0)
    }
    Terminal.standardError.write(message + "\n")
    exit(code == .validationFailure ? 2 : code.rawValue)
}

/// Runs the async `run()`; called through a generic so that the existential is opened and the
/// async requirement, not the synchronous one, is dispatched.
func runAsync<Command: AsyncParsableCommand>(_ command: inout Command) async throws {
    try await command.run()
}
