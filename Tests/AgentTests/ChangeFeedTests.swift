import AgentAPI
import Testing

@testable import Agent

@Suite(.timeLimit(.minutes(1))) struct ChangeFeedTests {
    @Test func waitReturnsAtOnceWhenAlreadyPast() async {
        let feed = ChangeFeed()
        feed.publish(index: 5, events: [])
        let start = ContinuousClock.now
        #expect(await feed.wait(after: 3, timeout: .seconds(10)) == 5)
        #expect(ContinuousClock.now - start < .seconds(5), "not the 10 s timeout")
    }

    @Test func waitWakesOnTheNextChange() async {
        let feed = ChangeFeed()
        feed.publish(index: 1, events: [])
        async let woken = feed.wait(after: 1, timeout: .seconds(60))
        try? await Task.sleep(for: .milliseconds(100))
        let published = ContinuousClock.now
        feed.publish(index: 2, events: [])
        // A wait that times out also answers the current index (2), so only the time tells a
        // wake-up from a timeout: it must come long before the 60 s timeout. (The bound was 2 s
        // against a 10 s timeout, and CI's loaded pool took 2.5 s to resume the waiter.)
        #expect(await woken == 2)
        let latency = ContinuousClock.now - published
        #expect(latency < .seconds(30), "woken \(latency) after the change")
    }

    @Test func waitTimesOutWithTheCurrentIndex() async {
        let feed = ChangeFeed()
        feed.publish(index: 7, events: [])
        let start = ContinuousClock.now
        #expect(await feed.wait(after: 7, timeout: .milliseconds(200)) == 7)
        #expect(ContinuousClock.now - start >= .milliseconds(200))
    }

    /// Once finished (the agent stopping), a wait answers at once and a pace waits out its
    /// timeout, still woken by a change.
    @Test func afterFinishWaitsAnswerAndPacesTimeOut() async {
        let feed = ChangeFeed()
        feed.publish(index: 3, events: [])
        feed.finish()
        var start = ContinuousClock.now
        #expect(await feed.wait(after: 3, timeout: .seconds(30)) == 3)
        #expect(ContinuousClock.now - start < .seconds(10))
        start = ContinuousClock.now
        #expect(await feed.pace(after: 3, timeout: .milliseconds(200)) == 3)
        #expect(ContinuousClock.now - start >= .milliseconds(200))
        async let woken = feed.pace(after: 3, timeout: .seconds(30))
        // Bounded: a pace that returned at once never shows as waiting.
        let registered = ContinuousClock.now + .seconds(5)
        while feed.pending.waits == 0, ContinuousClock.now < registered { try? await Task.sleep(for: .milliseconds(1)) }
        #expect(feed.pending.waits == 1)
        feed.publish(index: 4, events: [])
        #expect(await woken == 4)
    }

    /// A blocking query woken by a change waits again (it rereads its key): each wait woken early
    /// must not leave its timeout asleep until the deadline, or a busy store piles them up.
    @Test func aWaitWokenByAChangeLeavesNoTimeoutBehind() async {
        let feed = ChangeFeed()
        for index in 1...UInt64(500) {
            async let woken = feed.wait(after: index - 1, timeout: .seconds(3600))
            // Published once the wait is registered, or it would return at once (also fine).
            while feed.pending.waits == 0 && feed.index < index { await Task.yield() }
            feed.publish(index: index, events: [])
            _ = await woken
        }
        let start = ContinuousClock.now
        while feed.pending.timers > 0 && ContinuousClock.now - start < .seconds(20) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        #expect(feed.pending.waits == 0)
        #expect(feed.pending.timers == 0, "timeouts of woken waits still asleep")
    }

    /// A blocking query whose client went away (its task cancelled) stops waiting at once.
    @Test func aCancelledWaitReturnsAtOnce() async {
        let feed = ChangeFeed()
        feed.publish(index: 3, events: [])
        let waiting = Task { await feed.wait(after: 3, timeout: .seconds(3600)) }
        while feed.pending.waits == 0 { await Task.yield() }
        waiting.cancel()
        #expect(await waiting.value == 3)
        #expect(feed.pending.waits == 0)
        // Cancelled before it waits: no wait at all.
        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await feed.wait(after: 3, timeout: .seconds(3600))
        }
        #expect(await cancelledFirst.value == 3)
        #expect(feed.pending.waits == 0)
    }

    @Test func subscribersGetRecentThenNewEventsAndRetentionIsBounded() async {
        let feed = ChangeFeed()
        let event = { (index: UInt64) in ClusterEvent(index: index, time: 0, kind: "test", message: "\(index)") }
        for index in 1...UInt64(ChangeFeed.retainedEvents + 10) { feed.publish(index: index, events: [event(index)]) }
        #expect(feed.recent(after: 0).count == ChangeFeed.retainedEvents)
        #expect(feed.recent(after: UInt64(ChangeFeed.retainedEvents + 5)).map(\.logIndex) == Array(UInt64(ChangeFeed.retainedEvents + 6)...UInt64(ChangeFeed.retainedEvents + 10)))
        let stream = feed.subscribe(after: UInt64(ChangeFeed.retainedEvents + 8))
        feed.publish(index: UInt64(ChangeFeed.retainedEvents + 11), events: [event(UInt64(ChangeFeed.retainedEvents + 11))])
        var seen: [UInt64] = []
        for await received in stream {
            seen.append(received.logIndex)
            if seen.count == 3 { break }
        }
        #expect(seen == [UInt64(ChangeFeed.retainedEvents + 9), UInt64(ChangeFeed.retainedEvents + 10), UInt64(ChangeFeed.retainedEvents + 11)])
    }
}
