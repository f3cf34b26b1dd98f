/// A snapshot being received, chunk after chunk, from the leader.
struct SnapshotReception {
    let metadata: SnapshotMetadata
    let totalBytes: UInt64
    var data: [UInt8]
}

extension RaftCore {
    // MARK: - Application hooks

    /// The snapshot the application should keep for its state at `index`, which it has
    /// applied: the term there and the membership there are filled in from the log.
    ///
    /// The application persists it, then compacts its storage (for `MemoryStorage`,
    /// `compact(to:)`), between an `advance(_:)` and the next `ready()`. The log before the
    /// snapshot is then gone; followers that still need it get the snapshot (paper §7).
    public func snapshot(at index: UInt64, data: [UInt8]) throws(RaftError) -> Snapshot {
        let firstIndex = log.firstIndex
        guard index <= log.applied, index >= firstIndex, let term = try? log.term(at: index) else {
            throw .invalidSnapshotIndex(index: index, firstIndex: firstIndex, applied: log.applied)
        }
        return Snapshot(metadata: SnapshotMetadata(index: index, term: term, confState: membership.conf(at: index)),
                        data: data)
    }

    // MARK: - Leader

    /// Starts sending the latest snapshot to a follower that needs entries we compacted.
    /// Returns whether a chunk went out.
    mutating func sendSnapshot(to peer: NodeID) -> Bool {
        // Sending a whole snapshot into the void is costly: wait until the follower answers
        // (etcd raft).
        guard leaderState.progress[peer]?.recentActive == true else { return false }
        let snapshot: Snapshot
        do {
            snapshot = try log.snapshot()
        } catch .snapshotTemporarilyUnavailable {
            return false
        } catch {
            preconditionFailure("leader \(id) cannot read its snapshot: \(error)")
        }
        precondition(snapshot.metadata.index > 0, "log compacted without a snapshot")
        leaderState.progress[peer]?.becomeSnapshot(index: snapshot.metadata.index)
        leaderState.progress[peer]?.snapshotTransfer = SnapshotTransfer(snapshot: snapshot, sentOffset: 0, reportedOffset: 0)
        sendSnapshotChunk(to: peer, offset: 0)
        return true
    }

    /// Sends the chunk at `offset`; one chunk is in flight at a time, and the next goes out
    /// when this one is acknowledged.
    mutating func sendSnapshotChunk(to peer: NodeID, offset: UInt64) {
        guard let transfer = leaderState.progress[peer]?.snapshotTransfer else { return }
        let data = transfer.snapshot.data
        let start = Int(min(offset, UInt64(data.count)))
        let end = min(start + config.snapshotChunkBytes, data.count)
        send(to: peer, .snapshotChunk(SnapshotChunk(
            metadata: transfer.snapshot.metadata, offset: UInt64(start),
            totalBytes: UInt64(data.count), data: Array(data[start..<end]))))
        leaderState.progress[peer]?.snapshotTransfer?.sentOffset = UInt64(start)
    }

    /// After a heartbeat answer, sends again from where the follower last said it was: a
    /// chunk or its answer may have been lost, or the follower restarted.
    mutating func resendSnapshotChunk(to peer: NodeID) {
        guard let transfer = leaderState.progress[peer]?.snapshotTransfer else { return }
        sendSnapshotChunk(to: peer, offset: transfer.reportedOffset)
    }

    mutating func handleSnapshotChunkResponse(from peer: NodeID, _ response: SnapshotChunkResponse) {
        guard let transfer = leaderState.progress[peer]?.snapshotTransfer,
              transfer.snapshot.metadata.index == response.snapshotIndex else { return }
        leaderState.progress[peer]?.snapshotTransfer?.reportedOffset = response.receivedBytes
        // Only the answer to the chunk in flight moves the transfer on, so duplicated answers
        // do not multiply chunks.
        let total = UInt64(transfer.snapshot.data.count)
        let expected = min(transfer.sentOffset + UInt64(config.snapshotChunkBytes), total)
        if response.receivedBytes == expected && expected < total {
            sendSnapshotChunk(to: peer, offset: expected)
        }
    }

    // MARK: - Follower

    /// InstallSnapshot receiver (paper §7, Figure 13): gathers chunks in order; the last one
    /// installs the snapshot and tells the leader where our log now ends.
    mutating func handleSnapshotChunk(from leaderID: NodeID, _ chunk: SnapshotChunk) {
        let metadata = chunk.metadata
        if metadata.index <= log.committed {
            // We already hold everything it covers.
            snapshotReception = nil
            send(to: leaderID, .appendResponse(AppendResponse(index: log.committed)))
            return
        }
        if chunk.offset == 0 {
            snapshotReception = SnapshotReception(metadata: metadata, totalBytes: chunk.totalBytes, data: chunk.data)
        } else if var reception = snapshotReception, reception.metadata == metadata,
                  reception.totalBytes == chunk.totalBytes, UInt64(reception.data.count) == chunk.offset {
            snapshotReception = nil
            reception.data.append(contentsOf: chunk.data)
            snapshotReception = reception
        } else {
            // Out of order or unknown: say what we hold so the leader resends from there.
            let held = snapshotReception.flatMap { $0.metadata == metadata ? UInt64($0.data.count) : nil } ?? 0
            send(to: leaderID, .snapshotChunkResponse(SnapshotChunkResponse(snapshotIndex: metadata.index, receivedBytes: held)))
            return
        }
        guard let reception = snapshotReception else { return }
        guard UInt64(reception.data.count) == reception.totalBytes else {
            send(to: leaderID, .snapshotChunkResponse(SnapshotChunkResponse(
                snapshotIndex: metadata.index, receivedBytes: UInt64(reception.data.count))))
            return
        }
        snapshotReception = nil
        if restore(Snapshot(metadata: metadata, data: reception.data)) {
            send(to: leaderID, .appendResponse(AppendResponse(index: log.lastIndex)))
        } else {
            send(to: leaderID, .appendResponse(AppendResponse(index: log.committed)))
        }
    }

    /// Replaces the log with a snapshot, unless the log already holds its last entry (then
    /// only the commit index moves, as etcd raft does). Returns whether it was installed.
    mutating func restore(_ snapshot: Snapshot) -> Bool {
        let metadata = snapshot.metadata
        guard metadata.index > log.committed else { return false }
        if log.matchTerm(index: metadata.index, term: metadata.term) {
            log.commit(to: metadata.index)
            return false
        }
        log.restore(snapshot)
        membership.reset(to: metadata)
        return true
    }
}
