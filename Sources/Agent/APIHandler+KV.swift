import AgentAPI
import Controller
import Foundation
import OpenAPIRuntime

/// The key-value store (`/v1/kv`, `/v1/txn`). Every write is one transaction through the Raft
/// log, answered once applied; reads are linearizable (a ReadIndex barrier) unless `?stale`,
/// and a blocking read waits for the change index of its key or prefix, not of the whole state.
extension APIHandler {
    func listKV(_ input: Operations.ListKV.Input) async throws -> Operations.ListKV.Output {
        let query = input.query
        let prefix = Array((query.prefix ?? "").utf8)
        let withValues = !(query.keys ?? false)
        let read = try await kvRead(
            index: query.index, wait: query.wait, stale: query.stale, changeIndex: { $0.changeIndex(underPrefix: prefix) }
        ) { $0.list(prefix: prefix) }
        return .ok(.init(headers: read.listHeaders(), body: .json(read.result.map { APIMapping.kvEntry($0, withValue: withValues) })))
    }

    func getKV(_ input: Operations.GetKV.Input) async throws -> Operations.GetKV.Output {
        let query = input.query
        let recurse = query.recurse ?? false
        let raw = query.raw ?? false
        if recurse && raw {
            throw APIError(code: APIErrorCode.conflictingParameters, message: "raw answers one key's bytes; leave it out with recurse", path: "raw")
        }
        let key = try KVRequestDecoding.key(input.path.key, at: "key")
        if recurse {
            let read = try await kvRead(
                index: query.index, wait: query.wait, stale: query.stale, changeIndex: { $0.changeIndex(underPrefix: key.bytes) }
            ) { $0.list(prefix: key.bytes) }
            return .ok(.init(headers: read.headers(), body: .json(.KVEntryList(read.result.map { APIMapping.kvEntry($0, withValue: true) }))))
        }
        let read = try await kvRead(
            index: query.index, wait: query.wait, stale: query.stale, changeIndex: { $0.changeIndex(of: key) }
        ) { $0.get(key) }
        guard let entry = read.result else {
            return .notFound(.init(
                headers: .init(xFlotillaIndex: read.index, xFlotillaLastContact: read.lastContactMilliseconds, xFlotillaKnownLeader: read.leaderContact != nil),
                body: .json(APIError(code: APIErrorCode.keyNotFound, message: "no key \"\(key)\"; list keys with `deployctl kv ls`", path: "key"))))
        }
        if raw { return .ok(.init(headers: read.headers(), body: .binary(HTTPBody(entry.value)))) }
        return .ok(.init(headers: read.headers(), body: .json(.KVEntry(APIMapping.kvEntry(entry, withValue: true)))))
    }

    func putKV(_ input: Operations.PutKV.Input) async throws -> Operations.PutKV.Output {
        let key = try KVRequestDecoding.key(input.path.key, at: "key")
        // The body as read by the middleware (at most 16 MiB) or by `KVFastPath` (at most
        // 512 KiB, the value limit); none is an empty value.
        let value = RequestBody.bytes ?? []
        var compares: [KVCompare] = []
        if let cas = input.query.cas {
            guard cas >= 0 else { throw Self.negative("cas", cas) }
            compares.append(.modifyIndex(key, equals: UInt64(cas)))
        }
        return try Self.putKVOutput(await submitKV(KVTransaction(compares: compares, operations: [.set(key, value)]), checkAndSet: true))
    }

    /// `putKV` of `value` at `key` without `cas`, for `KVFastPath` on an event loop: proposed
    /// without a task while this server leads (`ClusterGateway.submitWhileLeading`, whose
    /// `otherwise` and `done` these are). `putKVOutput(submitted:)` makes `done`'s outcome
    /// `putKV`'s answer.
    func submitPlainPut(
        key: KVKey, value: [UInt8], startBatch: (@escaping @Sendable () -> Void) -> Void,
        otherwise: @escaping @Sendable () -> Void,
        done: @escaping @Sendable (Result<(result: CommandResult, index: UInt64), APIError>) -> Void
    ) {
        let transaction = KVTransaction(compares: [], operations: [.set(key, value)])
        do {
            try transaction.validate()
        } catch {
            return done(.failure(APIMapping.error(error)))
        }
        api.gateway.submitWhileLeading(.kvTransaction(transaction), startBatch: startBatch, otherwise: otherwise, done: done)
    }

    /// `putKV`'s answer for what `submitPlainPut` submitted.
    static func putKVOutput(
        submitted: Result<(result: CommandResult, index: UInt64), APIError>
    ) throws(APIError) -> Operations.PutKV.Output {
        try putKVOutput(compareHeld(kvApplied(submitted.get().result), checkAndSet: true))
    }

    private static func putKVOutput(_ outcome: KVTransactionResult) throws(APIError) -> Operations.PutKV.Output {
        guard case .written(let entry) = outcome.results.first else { throw Self.unexpected(outcome) }
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(outcome.index)), body: .json(APIMapping.kvEntry(entry, withValue: false))))
    }

    func deleteKV(_ input: Operations.DeleteKV.Input) async throws -> Operations.DeleteKV.Output {
        let key = try KVRequestDecoding.key(input.path.key, at: "key")
        let recurse = input.query.recurse ?? false
        var compares: [KVCompare] = []
        if let cas = input.query.cas {
            guard !recurse else {
                throw APIError(code: APIErrorCode.conflictingParameters, message: "cas compares one key's modify index; leave it out with recurse", path: "cas")
            }
            guard cas >= 1 else { throw APIError(code: APIErrorCode.badRequest, message: "cas=\(cas): a key to delete has a modify index of at least 1", path: "cas") }
            compares.append(.modifyIndex(key, equals: UInt64(cas)))
        }
        let outcome = try await proposeKV(KVTransaction(compares: compares, operations: [recurse ? .deleteTree(prefix: key) : .delete(key)]))
        var count = 0
        if let failed = outcome.failedCompare {
            // A key already gone when the delete applied is deleted as asked, whatever index
            // `cas` named (Consul answers true too): a retried delete whose first try went
            // through, or another client's, is no conflict. Changed since, it is one.
            guard failed.current == nil else { throw APIMapping.compareFailed(failed, checkAndSet: true) }
        } else {
            guard case .deleted(let deleted) = outcome.results.first else { throw Self.unexpected(outcome) }
            count = deleted
        }
        return .ok(.init(
            headers: .init(xFlotillaIndex: APIMapping.signed(outcome.index)),
            body: .json(Schemas.KVDeleteResult(deleted: Int64(count), index: APIMapping.signed(outcome.index)))))
    }

    func kvTransaction(_ input: Operations.KvTransaction.Input) async throws -> Operations.KvTransaction.Output {
        let request: Schemas.KVTransactionRequest
        switch input.body {
        case .json(let body): request = body
        }
        let transaction = try KVRequestDecoding.transaction(request)
        let outcome = try await submitKV(transaction)
        let results = zip(transaction.operations, outcome.results).map(APIMapping.kvOperationResult)
        return .ok(.init(
            headers: .init(xFlotillaIndex: APIMapping.signed(outcome.index)),
            body: .json(Schemas.KVTransactionResult(index: APIMapping.signed(outcome.index), results: results))))
    }

    // MARK: - Helpers

    /// A read of the store and the change index of what it read.
    struct KVRead<Result: Sendable>: Sendable {
        var result: Result
        var index: Int64
        var leaderContact: Duration?

        var lastContactMilliseconds: Int64? { leaderContact.map { Int64($0 / .milliseconds(1)) } }

        func headers() -> Operations.GetKV.Output.Ok.Headers {
            .init(xFlotillaIndex: index, xFlotillaLastContact: lastContactMilliseconds, xFlotillaKnownLeader: leaderContact != nil)
        }

        func listHeaders() -> Operations.ListKV.Output.Ok.Headers {
            .init(xFlotillaIndex: index, xFlotillaLastContact: lastContactMilliseconds, xFlotillaKnownLeader: leaderContact != nil)
        }
    }

    /// Reads the store, linearizably unless `stale`; with `?index=N`, first waits (up to
    /// `?wait=`) until the change index `changeIndex` finds passes N. The index is at least 1,
    /// as Consul's, so that passing it back always blocks. Only the first read takes the
    /// ReadIndex barrier: what this replica applies after it is newer still, so a read woken by
    /// a change is as linearizable without another round to the leader. `body` is done on the
    /// Raft node's actor: the caller maps what it returns into answers.
    func kvRead<Result: Sendable>(
        index: Int64?, wait: String?, stale: Bool?, changeIndex: @escaping @Sendable (KVStore) -> UInt64,
        _ body: @escaping @Sendable (KVStore) -> Result
    ) async throws(APIError) -> KVRead<Result> {
        let limit = try api.queryLimits.wait(wait, fallback: api.queryLimits.defaultWait)
        if let index, index < 0 { throw Self.negative("index", index) }
        let deadline = ContinuousClock.now + limit
        var consistent = !(stale ?? false)
        while true {
            // A client gone away cancels this task: its wait returns at once, so read and end.
            let blocking = index.flatMap {
                ContinuousClock.now < deadline && !api.gateway.kvFeed.isFinished && !Task.isCancelled ? UInt64($0) : nil
            }
            let read = try await api.gateway.readKV(consistent: consistent, after: blocking, changeIndex: changeIndex, body)
            consistent = false
            guard let result = read.result else {
                // Any change of the store wakes this; only one past what was read counts.
                _ = await api.gateway.kvFeed.wait(after: read.stateIndex, timeout: deadline - .now)
                continue
            }
            return KVRead(result: result, index: APIMapping.signed(read.changeIndex), leaderContact: read.leaderContact)
        }
    }

    /// Proposes a transaction, refused here first if no replica would take it; a comparison
    /// that does not hold is a conflict that names it (`?cas=`'s, with `checkAndSet`).
    func submitKV(_ transaction: KVTransaction, checkAndSet: Bool = false) async throws(APIError) -> KVTransactionResult {
        try Self.compareHeld(await proposeKV(transaction), checkAndSet: checkAndSet)
    }

    /// `outcome`, unless a comparison failed: then the error naming it.
    private static func compareHeld(_ outcome: KVTransactionResult, checkAndSet: Bool) throws(APIError) -> KVTransactionResult {
        if let failed = outcome.failedCompare { throw APIMapping.compareFailed(failed, checkAndSet: checkAndSet) }
        return outcome
    }

    /// Proposes a transaction, refused here first if no replica would take it; applied, it is
    /// returned whether its comparisons held or not.
    func proposeKV(_ transaction: KVTransaction) async throws(APIError) -> KVTransactionResult {
        do {
            try transaction.validate()
        } catch {
            throw APIMapping.error(error)
        }
        return try Self.kvApplied(await api.gateway.submit(.kvTransaction(transaction)).result)
    }

    /// A transaction's outcome from what its entry's applying returned.
    private static func kvApplied(_ result: CommandResult) throws(APIError) -> KVTransactionResult {
        guard case .kvTransactionApplied(let outcome) = result else { throw Self.refusal(result) }
        return outcome
    }

    static func unexpected(_ outcome: KVTransactionResult) -> APIError {
        APIError(code: APIErrorCode.internalError, message: "the store answered \(outcome.results), which this endpoint does not expect")
    }
}
