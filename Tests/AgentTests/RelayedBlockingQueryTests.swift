import HTTPTypes
import Hummingbird
import Testing

@testable import Agent

/// What a client agent asks again, without its wait, when it stops (`relayBlocking`).
@Suite struct RelayedBlockingQueryTests {
    typealias Middleware = APIForwardingMiddleware<BasicRequestContext>

    @Test func onlyReadsWithAnIndexAreBlockingQueries() {
        #expect(Middleware.isBlockingQuery(method: .get, index: "12"))
        #expect(!Middleware.isBlockingQuery(method: .get, index: nil))
        // A write with a stray index may have acted when its relay was cancelled.
        #expect(!Middleware.isBlockingQuery(method: .put, index: "12"))
        #expect(!Middleware.isBlockingQuery(method: .post, index: "12"))
        #expect(!Middleware.isBlockingQuery(method: .delete, index: "12"))
    }

    @Test func theWaitIsTakenOutAndTheRestKept() {
        #expect(Middleware.withoutWait("/v1/kv/a?index=9&wait=60s") == "/v1/kv/a")
        #expect(Middleware.withoutWait("/v1/kv/a?recurse=true&index=9&wait=60s&stale=true") == "/v1/kv/a?recurse=true&stale=true")
        #expect(Middleware.withoutWait("/v1/catalog?indexes=1&waitx=2&index&wait=") == "/v1/catalog?indexes=1&waitx=2")
        #expect(Middleware.withoutWait("/v1/kv/a?prefix=index%3D3&index=4") == "/v1/kv/a?prefix=index%3D3")
        #expect(Middleware.withoutWait("/v1/status") == "/v1/status")
    }
}
