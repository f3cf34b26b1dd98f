/// One-line renderings used in logs and in the plain-text scenario tests, where they are the
/// specification a reviewer reads; keep them stable.
extension Message: CustomStringConvertible {
    /// For example `1->2 append term=2 prev=1/11 commit=11 entries=[2/12 ""]`.
    public var description: String {
        "\(from)->\(to) \(payloadDescription(term: term))"
    }

    private func payloadDescription(term: UInt64) -> String {
        switch payload {
        case .preVote(let request):
            return "pre-vote term=\(term) last=\(request.lastLogTerm)/\(request.lastLogIndex)"
        case .vote(let request):
            let transfer = request.leadershipTransfer ? " transfer" : ""
            return "vote term=\(term) last=\(request.lastLogTerm)/\(request.lastLogIndex)\(transfer)"
        case .preVoteResponse(let response):
            return "pre-vote-response term=\(term) \(response.granted ? "granted" : "rejected")"
        case .voteResponse(let response):
            return "vote-response term=\(term) \(response.granted ? "granted" : "rejected")"
        case .append(let request):
            let entries = request.entries.map(\.description).joined(separator: ", ")
            return "append term=\(term) prev=\(request.prevLogTerm)/\(request.prevLogIndex) "
                + "commit=\(request.commit) entries=[\(entries)]"
        case .appendResponse(let response):
            if response.rejected {
                return "append-response term=\(term) rejected index=\(response.index) "
                    + "hint=\(response.hintTerm)/\(response.hintIndex)"
            }
            return "append-response term=\(term) index=\(response.index)"
        case .heartbeat(let heartbeat):
            return "heartbeat term=\(term) commit=\(heartbeat.commit) round=\(heartbeat.readRound)"
        case .heartbeatResponse(let response):
            return "heartbeat-response term=\(term) round=\(response.readRound)"
        case .snapshotChunk(let chunk):
            let end = chunk.offset + UInt64(chunk.data.count)
            return "snapshot term=\(term) snap=\(chunk.metadata.term)/\(chunk.metadata.index) "
                + "bytes=\(chunk.offset)..<\(end)/\(chunk.totalBytes)"
                + (chunk.isLast ? " last \(chunk.metadata.confState)" : "")
        case .snapshotChunkResponse(let response):
            return "snapshot-response term=\(term) snap=\(response.snapshotIndex) received=\(response.receivedBytes)"
        case .timeoutNow:
            return "timeout-now term=\(term)"
        case .readIndex(let request):
            return "read-index term=\(term) ctx=\(renderBytes(request.context))"
        case .readIndexResponse(let response):
            return "read-index-response term=\(term) index=\(response.index) ctx=\(renderBytes(response.context))"
        }
    }
}

extension Entry: CustomStringConvertible {
    /// `term/index "data"`, or `term/index conf add-voter 4` for a membership change.
    public var description: String {
        switch kind {
        case .normal:
            return "\(term)/\(index) \(renderBytes(data))"
        case .configChange:
            if let change = try? ConfChange(decoding: data) {
                return "\(term)/\(index) conf \(change)"
            }
            return "\(term)/\(index) conf \(renderBytes(data))"
        }
    }
}

extension ConfState: CustomStringConvertible {
    /// `voters=[1,2,3]`, plus ` learners=[4]` when there are learners.
    public var description: String {
        let voterList = voters.sorted().map(String.init).joined(separator: ",")
        if learners.isEmpty { return "voters=[\(voterList)]" }
        let learnerList = learners.sorted().map(String.init).joined(separator: ",")
        return "voters=[\(voterList)] learners=[\(learnerList)]"
    }
}

extension HardState: CustomStringConvertible {
    /// `term=2 vote=1 commit=12`.
    public var description: String {
        "term=\(term) vote=\(vote) commit=\(commit)"
    }
}

/// Printable ASCII as a quoted string, anything else as hex, so that outputs stay one line.
func renderBytes(_ bytes: [UInt8]) -> String {
    let printable = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
    if printable {
        return "\"" + String(decoding: bytes, as: UTF8.self) + "\""
    }
    let hexDigits = Array("0123456789abcdef")
    var hex = "0x"
    for byte in bytes {
        hex.append(hexDigits[Int(byte >> 4)])
        hex.append(hexDigits[Int(byte & 0x0F)])
    }
    return hex
}
