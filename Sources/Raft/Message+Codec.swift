/// Why bytes could not be decoded into a `Message`.
public enum MessageDecodingError: Error, Sendable, Hashable {
    /// The bytes end (or a length points) past the end of the input.
    case truncated(offset: Int)
    /// A varint is longer than 64 bits.
    case malformedVarint(offset: Int)
    /// The format version is not one this build reads.
    case unsupportedVersion(UInt8)
    /// The message kind tag is unknown.
    case unknownKind(tag: UInt8, offset: Int)
    /// A field holds a value outside its range.
    case invalidValue(field: String, value: UInt64, offset: Int)
    /// Bytes are left over after a complete message.
    case trailingBytes(count: Int)
}

extension Message {
    /// The format version written first, so that a later format can be told apart.
    static let codecVersion: UInt8 = 1

    private enum Tag: UInt8 {
        case preVote = 1, preVoteResponse, vote, voteResponse, append, appendResponse
        case heartbeat, heartbeatResponse, snapshotChunk, snapshotChunkResponse, timeoutNow
        case readIndex, readIndexResponse
    }

    /// The message in a compact binary form: a version byte, a kind tag, then varint fields
    /// and length-prefixed bytes. Entries of an append share one leading index since they are
    /// consecutive.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 32 + payloadByteEstimate)
        writer.writeByte(Self.codecVersion)
        writer.writeByte(tag.rawValue)
        writer.writeVarint(from)
        writer.writeVarint(to)
        writer.writeVarint(term)
        switch payload {
        case .preVote(let request), .vote(let request):
            writer.writeVarint(request.lastLogIndex)
            writer.writeVarint(request.lastLogTerm)
            writer.writeBool(request.leadershipTransfer)
        case .preVoteResponse(let response), .voteResponse(let response):
            writer.writeBool(response.granted)
        case .append(let request):
            writer.writeVarint(request.prevLogIndex)
            writer.writeVarint(request.prevLogTerm)
            writer.writeVarint(request.commit)
            writer.writeVarint(request.entries.count)
            for entry in request.entries {
                writer.writeVarint(entry.term)
                writer.writeByte(entry.kind.rawValue)
                writer.writeBytes(entry.data)
            }
        case .appendResponse(let response):
            writer.writeVarint(response.index)
            writer.writeBool(response.rejected)
            writer.writeVarint(response.hintIndex)
            writer.writeVarint(response.hintTerm)
        case .heartbeat(let heartbeat):
            writer.writeVarint(heartbeat.commit)
            writer.writeVarint(heartbeat.readRound)
        case .heartbeatResponse(let response):
            writer.writeVarint(response.readRound)
        case .snapshotChunk(let chunk):
            writer.writeSnapshotMetadata(chunk.metadata)
            writer.writeVarint(chunk.offset)
            writer.writeVarint(chunk.totalBytes)
            writer.writeBytes(chunk.data)
        case .snapshotChunkResponse(let response):
            writer.writeVarint(response.snapshotIndex)
            writer.writeVarint(response.receivedBytes)
        case .timeoutNow:
            break
        case .readIndex(let request):
            writer.writeBytes(request.context)
        case .readIndexResponse(let response):
            writer.writeVarint(response.index)
            writer.writeBytes(response.context)
        }
        return writer.bytes
    }

    /// Decodes what `encoded()` wrote. Bad input of any kind throws; it never traps.
    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        var reader = ByteReader(bytes)
        let version = try reader.readByte()
        guard version == Self.codecVersion else { throw .unsupportedVersion(version) }
        let tagOffset = reader.offset
        let rawTag = try reader.readByte()
        guard let tag = Tag(rawValue: rawTag) else { throw .unknownKind(tag: rawTag, offset: tagOffset) }
        let from = try reader.readVarint()
        let to = try reader.readVarint()
        let term = try reader.readVarint()
        let payload: Payload
        switch tag {
        case .preVote, .vote:
            let request = VoteRequest(
                lastLogIndex: try reader.readVarint(),
                lastLogTerm: try reader.readVarint(),
                leadershipTransfer: try reader.readBool())
            payload = tag == .preVote ? .preVote(request) : .vote(request)
        case .preVoteResponse:
            payload = .preVoteResponse(VoteResponse(granted: try reader.readBool()))
        case .voteResponse:
            payload = .voteResponse(VoteResponse(granted: try reader.readBool()))
        case .append:
            let prevLogIndex = try reader.readVarint()
            let prevLogTerm = try reader.readVarint()
            let commit = try reader.readVarint()
            // Each entry takes at least three bytes: term, kind and data length.
            let count = try reader.readLength(minimumElementBytes: 3)
            var entries: [Entry] = []
            entries.reserveCapacity(count)
            for position in 0..<count {
                let entryTerm = try reader.readVarint()
                let kindOffset = reader.offset
                let rawKind = try reader.readByte()
                guard let kind = EntryKind(rawValue: rawKind) else {
                    throw .invalidValue(field: "entry kind", value: UInt64(rawKind), offset: kindOffset)
                }
                let (index, overflow) = prevLogIndex.addingReportingOverflow(UInt64(position) + 1)
                guard !overflow else {
                    throw .invalidValue(field: "prevLogIndex", value: prevLogIndex, offset: kindOffset)
                }
                entries.append(Entry(term: entryTerm, index: index, kind: kind, data: try reader.readBytes()))
            }
            payload = .append(AppendRequest(
                prevLogIndex: prevLogIndex, prevLogTerm: prevLogTerm, entries: entries, commit: commit))
        case .appendResponse:
            payload = .appendResponse(AppendResponse(
                index: try reader.readVarint(),
                rejected: try reader.readBool(),
                hintIndex: try reader.readVarint(),
                hintTerm: try reader.readVarint()))
        case .heartbeat:
            payload = .heartbeat(Heartbeat(commit: try reader.readVarint(), readRound: try reader.readVarint()))
        case .heartbeatResponse:
            payload = .heartbeatResponse(HeartbeatResponse(readRound: try reader.readVarint()))
        case .snapshotChunk:
            let metadata = try reader.readSnapshotMetadata()
            let offsetField = reader.offset
            let offset = try reader.readVarint()
            let totalBytes = try reader.readVarint()
            let data = try reader.readBytes()
            guard offset <= totalBytes, UInt64(data.count) <= totalBytes - offset else {
                throw .invalidValue(field: "snapshot chunk offset", value: offset, offset: offsetField)
            }
            payload = .snapshotChunk(SnapshotChunk(
                metadata: metadata, offset: offset, totalBytes: totalBytes, data: data))
        case .snapshotChunkResponse:
            payload = .snapshotChunkResponse(SnapshotChunkResponse(
                snapshotIndex: try reader.readVarint(), receivedBytes: try reader.readVarint()))
        case .timeoutNow:
            payload = .timeoutNow
        case .readIndex:
            payload = .readIndex(ReadIndexRequest(context: try reader.readBytes()))
        case .readIndexResponse:
            payload = .readIndexResponse(ReadIndexResponse(
                index: try reader.readVarint(), context: try reader.readBytes()))
        }
        guard reader.remainingCount == 0 else { throw .trailingBytes(count: reader.remainingCount) }
        self.init(from: from, to: to, term: term, payload: payload)
    }

    private var tag: Tag {
        switch payload {
        case .preVote: .preVote
        case .preVoteResponse: .preVoteResponse
        case .vote: .vote
        case .voteResponse: .voteResponse
        case .append: .append
        case .appendResponse: .appendResponse
        case .heartbeat: .heartbeat
        case .heartbeatResponse: .heartbeatResponse
        case .snapshotChunk: .snapshotChunk
        case .snapshotChunkResponse: .snapshotChunkResponse
        case .timeoutNow: .timeoutNow
        case .readIndex: .readIndex
        case .readIndexResponse: .readIndexResponse
        }
    }

    private var payloadByteEstimate: Int {
        switch payload {
        case .append(let request): request.entries.reduce(0) { $0 + $1.data.count + 12 }
        case .snapshotChunk(let chunk): chunk.data.count + 64
        default: 16
        }
    }
}

extension ByteWriter {
    mutating func writeSnapshotMetadata(_ metadata: SnapshotMetadata) {
        writeVarint(metadata.index)
        writeVarint(metadata.term)
        writeNodeIDs(metadata.confState.voters)
        writeNodeIDs(metadata.confState.learners)
    }

    /// Sorted, so that equal sets encode to equal bytes.
    mutating func writeNodeIDs(_ ids: Set<NodeID>) {
        writeVarint(ids.count)
        for id in ids.sorted() { writeVarint(id) }
    }
}

extension ByteReader {
    mutating func readSnapshotMetadata() throws(MessageDecodingError) -> SnapshotMetadata {
        let index = try readVarint()
        let term = try readVarint()
        let voters = try readNodeIDs()
        let learners = try readNodeIDs()
        return SnapshotMetadata(index: index, term: term, confState: ConfState(voters: voters, learners: learners))
    }

    mutating func readNodeIDs() throws(MessageDecodingError) -> Set<NodeID> {
        let count = try readLength()
        var ids = Set<NodeID>(minimumCapacity: count)
        for _ in 0..<count { ids.insert(try readVarint()) }
        return ids
    }
}
