/// Polls `condition` every `interval` until it holds or `timeout` has passed; whether it held.
///
/// It looks once more after the deadline: in the full suite a task may wait for Swift's pool
/// past its deadline without having looked at all, and would time out on a condition that holds.
public func pollCondition(
    timeout: Duration, every interval: Duration, _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline && !Task.isCancelled {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
