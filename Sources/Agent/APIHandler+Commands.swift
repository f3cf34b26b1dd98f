import AgentAPI
import Controller
import Manifest

/// The operations that change the cluster: each is one Raft entry, or none when refused.
extension APIHandler {
    func applyApplication(_ input: Operations.ApplyApplication.Input) async throws -> Operations.ApplyApplication.Output {
        let name = input.path.name
        // The manifest as sent, byte for byte (`RequestBody` keeps it): the decoder
        // locates its problems by their JSON paths, and the revision records the text as written.
        guard let bytes = RequestBody.bytes else {
            throw APIError(code: APIErrorCode.internalError, message: "the request body was not captured; this is a bug in agentd")
        }
        // Validated here too, so that a bad manifest is refused with its paths before it costs a
        // log entry (the state machine checks again when applying).
        let manifest: Manifest.Application
        do {
            manifest = try ManifestDecoder.decode(bytes)
        } catch {
            throw APIMapping.error(.invalidManifest(error.issues))
        }
        guard manifest.name == name else {
            throw APIError(
                code: APIErrorCode.invalidManifest,
                message: "the path names application \"\(name)\" but the manifest names \"\(manifest.name)\"; PUT it to /v1/applications/\(manifest.name)",
                path: "name")
        }
        let revision = try input.query.revision.map { revision throws(APIError) in
            guard revision >= 0 else { throw Self.negative("revision", revision) }
            return UInt64(revision)
        }
        // A tag names whatever was pushed last; the revision records the digest it names now.
        let pinned = try await pinImages(of: manifest)
        let manifestJSON = pinned == manifest ? String(decoding: bytes, as: UTF8.self) : JSONWriter.compact(pinned.json)
        let command = ControllerCommand.applyApplication(manifestJSON: manifestJSON, expectedRevision: revision)
        let result: CommandResult
        let index: UInt64
        let dryRun = input.query.dryRun ?? false
        if dryRun {
            result = await api.gateway.preview(command)
            index = try await api.gateway.read { $0.lastChangeIndex }
        } else {
            (result, index) = try await api.gateway.submit(command)
        }
        switch result {
        case .applicationApplied(let name, let revision, let diff):
            let body = APIMapping.applyResult(name, revision: revision, diff: diff, dryRun: dryRun, index: index)
            return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(body)))
        default:
            throw Self.refusal(result)
        }
    }

    /// The manifest with each service's image pinned to the digest its tag names now, asked of
    /// the registry once per image. A reference that cannot be resolved refuses the apply, at
    /// the service's `image`, with the registry's reason.
    private func pinImages(of manifest: Manifest.Application) async throws -> Manifest.Application {
        var pinned = manifest
        var resolved: [ImageName: String] = [:]
        for (index, service) in manifest.services.enumerated() {
            guard let image = service.image, image.digest == nil else { continue }
            if resolved[image] == nil {
                do {
                    guard let images = api.images else { throw ImageResolutionUnavailable() }
                    resolved[image] = try await images.resolve(image)
                } catch {
                    let path = "services[\(index)].image"
                    var refusal = APIError(code: APIErrorCode.invalidManifest, message: "\(path): cannot resolve \(image): \(error)", path: path)
                    refusal.issues = [Schemas.ManifestIssue(path: path, message: "cannot resolve \(image): \(error)")]
                    throw refusal
                }
            }
            pinned.services[index].image = image.pinned(to: resolved[image]!)
        }
        return pinned
    }

    func deleteApplication(_ input: Operations.DeleteApplication.Input) async throws -> Operations.DeleteApplication.Output {
        let revision = try input.query.revision.map { revision throws(APIError) in
            guard revision >= 0 else { throw Self.negative("revision", revision) }
            return UInt64(revision)
        }
        let (result, index) = try await api.gateway.submit(.deleteApplication(name: input.path.name, expectedRevision: revision))
        guard case .applicationDeleted(let name, let stopping) = result else { throw Self.refusal(result) }
        let message = "deleted \(name); stopping \(stopping.count) instance\(stopping.count == 1 ? "" : "s")"
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome(message, index))))
    }

    func scaleService(_ input: Operations.ScaleService.Input) async throws -> Operations.ScaleService.Output {
        let request: Schemas.ScaleRequest
        switch input.body {
        case .json(let body): request = body
        }
        let key = ServiceKey(input.path.name, input.path.service)
        let revision = try request.revision.map { revision throws(APIError) in
            guard revision >= 0 else { throw APIError(code: APIErrorCode.badRequest, message: "revision \(revision) is negative", path: "revision") }
            return UInt64(revision)
        }
        let (result, index) = try await api.gateway.submit(.scaleService(key, replicas: request.replicas, expectedRevision: revision))
        guard case .serviceScaled(let key, let replicas) = result else { throw Self.refusal(result) }
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome("\(key) scaled to \(replicas)", index))))
    }

    func restartService(_ input: Operations.RestartService.Input) async throws -> Operations.RestartService.Output {
        let (result, index) = try await api.gateway.submit(.restartService(ServiceKey(input.path.name, input.path.service)))
        guard case .serviceRestarted(let key, _) = result else { throw Self.refusal(result) }
        let message = "\(key): every instance will be replaced"
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome(message, index))))
    }

    func pauseRollout(_ input: Operations.PauseRollout.Input) async throws -> Operations.PauseRollout.Output {
        let (message, index) = try await controlRollout(input.path.name, .pause)
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome(message, index))))
    }

    func resumeRollout(_ input: Operations.ResumeRollout.Input) async throws -> Operations.ResumeRollout.Output {
        let (message, index) = try await controlRollout(input.path.name, .resume)
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome(message, index))))
    }

    func promoteRollout(_ input: Operations.PromoteRollout.Input) async throws -> Operations.PromoteRollout.Output {
        let (message, index) = try await controlRollout(input.path.name, .promote)
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome(message, index))))
    }

    func undoRollout(_ input: Operations.UndoRollout.Input) async throws -> Operations.UndoRollout.Output {
        var requested: UInt64?
        if case .json(let body) = input.body, let revision = body.toRevision {
            // The document says minimum 1; the parameter check covers paths and queries, not bodies.
            guard revision >= 1 else { throw APIError(code: APIErrorCode.badRequest, message: "toRevision \(revision) is not a revision; revisions start at 1", path: "toRevision") }
            requested = UInt64(revision)
        }
        let (message, index) = try await controlRollout(input.path.name, .undo(to: requested))
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome(message, index))))
    }

    private func controlRollout(_ name: String, _ action: RolloutAction) async throws -> (String, UInt64) {
        let (result, index) = try await api.gateway.submit(.controlRollout(application: name, action: action))
        guard case .rolloutControlled(let name, let phase, let revision) = result else { throw Self.refusal(result) }
        switch action {
        case .pause, .resume: return ("\(name): rollout of revision \(revision) \(phase.rawValue)", index)
        case .promote: return ("\(name): canaries of revision \(revision) promoted; the rollout replaces the rest", index)
        case .undo(let target):
            return ("\(name): at revision \(revision)\(target.map { ", the manifest of revision \($0)" } ?? ""); its rollout is \(phase.rawValue)", index)
        }
    }

    func stopService(_ input: Operations.StopService.Input) async throws -> Operations.StopService.Output {
        // Stopping keeps the service and its manifest, with no instance: a scale to zero.
        let key = ServiceKey(input.path.name, input.path.service)
        let (result, index) = try await api.gateway.submit(.scaleService(key, replicas: 0, expectedRevision: nil))
        guard case .serviceScaled(let key, _) = result else { throw Self.refusal(result) }
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(index)), body: .json(Self.outcome("\(key) stopped", index))))
    }

    func transferLeadership(_ input: Operations.TransferLeadership.Input) async throws -> Operations.TransferLeadership.Output {
        let request: Schemas.TransferRequest
        switch input.body {
        case .json(let body): request = body
        }
        // The document says minimum 1; the parameter check covers paths and queries, not bodies.
        guard request.to >= 1 else { throw APIError(code: APIErrorCode.badRequest, message: "to \(request.to) is not a node id", path: "to") }
        try await api.gateway.transferLeadership(to: UInt64(request.to))
        return .ok(.init(body: .json(Self.outcome("node \(request.to) leads", 0))))
    }

    func drainNode(_ input: Operations.DrainNode.Input) async throws -> Operations.DrainNode.Output {
        let request: Schemas.DrainRequest
        switch input.body {
        case .json(let body): request = body
        }
        var deadline: Timestamp?
        // Checked always (the document's pattern); used with a drain only: ending one has none.
        if let text = request.deadline {
            do {
                let duration = try DurationText.parse(text)
                if request.enable { deadline = ClusterGateway.now().adding(duration) }
            } catch {
                throw APIError(code: APIErrorCode.badRequest, message: "deadline \(text) \(error.message)", path: "deadline")
            }
        }
        let name = input.path.name
        let (result, index) = try await api.gateway.submit(.setNodeDraining(node: name, draining: request.enable, deadline: deadline))
        guard case .nodeUpdated = result else { throw Self.refusal(result) }
        let message = request.enable ? "node \(name) is draining\(request.deadline.map { "; whatever remains in \($0) is stopped and replaced" } ?? "")" : "node \(name) no longer drains"
        return .ok(.init(body: .json(Self.outcome(message, index))))
    }

    func setNodeEligibility(_ input: Operations.SetNodeEligibility.Input) async throws -> Operations.SetNodeEligibility.Output {
        let request: Schemas.EligibilityRequest
        switch input.body {
        case .json(let body): request = body
        }
        let name = input.path.name
        let (result, index) = try await api.gateway.submit(.setNodeEligibility(node: name, eligible: request.eligible))
        guard case .nodeUpdated = result else { throw Self.refusal(result) }
        let message = request.eligible ? "node \(name) takes new instances" : "node \(name) takes no new instances; what runs there stays"
        return .ok(.init(body: .json(Self.outcome(message, index))))
    }

    func removeMember(_ input: Operations.RemoveMember.Input) async throws -> Operations.RemoveMember.Output {
        guard input.path.id >= 1 else { throw APIError(code: APIErrorCode.badRequest, message: "\(input.path.id) is not a node id", path: "id") }
        let index = try await api.gateway.removeMember(UInt64(input.path.id))
        return .ok(.init(body: .json(Self.outcome("node \(input.path.id) removed from the cluster", index))))
    }

    static func outcome(_ message: String, _ index: UInt64) -> Schemas.CommandOutcome {
        Schemas.CommandOutcome(message: message, index: APIMapping.signed(index))
    }

    /// A command's result other than the one asked for: its refusal in the error shape.
    static func refusal(_ result: CommandResult) -> APIError {
        if case .rejected(let error) = result { return APIMapping.error(error) }
        return APIError(code: APIErrorCode.internalError, message: "the command answered \(result), which this endpoint does not expect")
    }
}

/// An agent built without access to registries (none today; the API context's images are optional for tests).
struct ImageResolutionUnavailable: Error, CustomStringConvertible {
    var description: String { "this agent has no image store" }
}
