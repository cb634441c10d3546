import DatoCMS
import Testing

@Suite struct RateLimiterTests {
    let start = ContinuousClock.now

    /// Drives the limiter with unbounded demand on a virtual clock; returns grant times.
    func saturate(
        _ limiter: inout RateLimiter, for duration: Duration, step: Duration = .milliseconds(1),
        feedback: ((RateLimiter.Ticket, ContinuousClock.Instant) -> RateLimiter.ServerFeedback?)? = nil
    ) -> [ContinuousClock.Instant] {
        var grants: [ContinuousClock.Instant] = []
        var now = start
        while now < start + duration {
            while case .granted(let ticket) = limiter.acquire(at: now, priority: .submission) {
                grants.append(now)
                if let feedback, let value = feedback(ticket, now) {
                    limiter.record(value, for: ticket, at: now)
                }
            }
            now += step
        }
        return grants
    }

    func maxInAnyWindow(_ grants: [ContinuousClock.Instant], window: Duration) -> Int {
        var best = 0
        var first = 0
        for (index, grant) in grants.enumerated() {
            while grants[first] + window <= grant { first += 1 }
            best = max(best, index - first + 1)
        }
        return best
    }

    @Test func neverExceedsItsBudgetInAnyWindow() {
        let limit = RateLimit(requests: 60, window: .seconds(3))
        var limiter = RateLimiter(limit)
        // The server reports plenty of room, so only the local window constrains.
        let grants = saturate(&limiter, for: .seconds(12)) { _, _ in .init(limit: 60, remaining: 60) }
        #expect(maxInAnyWindow(grants, window: .seconds(3)) <= 60)
        // Submissions leave the last request of every window to polls.
        #expect(grants.count >= 4 * 59 - 1, "uses the budget it has: \(grants.count)")
    }

    @Test func pacesGrantsWhileTheServerHasNotAnswered() {
        var limiter = RateLimiter(RateLimit(requests: 60, window: .seconds(3)))
        let grants = saturate(&limiter, for: .seconds(1))
        // Without feedback, grants are spread at window/limit = 50 ms: no burst at cold start.
        #expect(grants.count == 20)
        #expect(maxInAnyWindow(grants, window: .milliseconds(50)) == 1)
    }

    @Test func waitsForTheResetOfA429() {
        var limiter = RateLimiter(RateLimit(requests: 60, window: .seconds(3)))
        guard case .granted(let ticket) = limiter.acquire(at: start, priority: .submission) else {
            Issue.record("first request must be granted")
            return
        }
        limiter.record(.init(limit: 60, remaining: 0, resetSeconds: 2, rateLimited: true), for: ticket, at: start)
        #expect(
            limiter.acquire(at: start + .milliseconds(1999), priority: .submission) == .wait(until: start + .seconds(2))
        )
        if case .granted = limiter.acquire(at: start + .seconds(2), priority: .submission) {
        } else {
            Issue.record("a request may be made once the reset has passed")
        }
    }

    @Test func backsOffOneWindowAfterA429WithoutReset() {
        var limiter = RateLimiter(RateLimit(requests: 60, window: .seconds(3)))
        guard case .granted(let ticket) = limiter.acquire(at: start, priority: .submission) else { return }
        limiter.record(.init(rateLimited: true), for: ticket, at: start)
        #expect(limiter.acquire(at: start + .seconds(1), priority: .submission) == .wait(until: start + .seconds(3)))
    }

    @Test func tightensWhenTheServerHasLessRemainingThanLocalBelief() {
        var limiter = RateLimiter(RateLimit(requests: 60, window: .seconds(3)))
        guard case .granted(let ticket) = limiter.acquire(at: start, priority: .background) else { return }
        // Another replica spent most of the budget: only 8 requests remain, of which a tenth of the budget (6) is
        // kept back while the token is shared (polls, which leave nothing else back).
        limiter.record(.init(limit: 60, remaining: 8), for: ticket, at: start + .milliseconds(10))
        var granted: [ContinuousClock.Instant] = []
        var now = start + .milliseconds(10)
        while now < start + .milliseconds(3000) {
            if case .granted = limiter.acquire(at: now, priority: .background) { granted.append(now) }
            now += .milliseconds(1)
        }
        #expect(granted.count == 2)
        #expect(granted.count == 2 && granted[1] - granted[0] >= .milliseconds(375), "paced, not a burst")
        #expect(limiter.acquire(at: now, priority: .background) == .wait(until: start + .milliseconds(3010)))
    }

    @Test func adoptsALowerServerLimit() {
        var limiter = RateLimiter(RateLimit(requests: 60, window: .seconds(3)))
        guard case .granted(let ticket) = limiter.acquire(at: start, priority: .submission) else { return }
        limiter.record(.init(limit: 30, remaining: 29), for: ticket, at: start)
        #expect(limiter.effectiveLimit == 30)
    }

    /// When the budget is short, a poll that is due goes before new work: submissions leave the last request.
    @Test func submissionsLeaveTheLastRequestToPolls() {
        var limiter = RateLimiter(RateLimit(requests: 20, window: .seconds(1)))
        var submissions = 0
        var now = start
        while now < start + .milliseconds(900) {
            if case .granted(let ticket) = limiter.acquire(at: now, priority: .submission) {
                submissions += 1
                limiter.record(.init(limit: 20, remaining: 20 - submissions), for: ticket, at: now)
            }
            now += .milliseconds(1)
        }
        #expect(submissions == 19)
        var polls = 0
        while now < start + .milliseconds(990) {
            if case .granted = limiter.acquire(at: now, priority: .background) { polls += 1 }
            now += .milliseconds(1)
        }
        #expect(polls == 1)
    }

    /// Alone on the token, a request counted by the server frees its slot one window after its grant plus the
    /// measured round trip (at least half a request's spacing, 25 ms at 60/3s), not a fixed twentieth of the window
    /// (150 ms, which left ~5 % of the budget unspent at saturation).
    @Test func aCountedRequestFreesItsSlotAfterTheWindowPlusTheRoundTrip() {
        var limiter = RateLimiter(.datoCMSDefault)
        var granted: [ContinuousClock.Instant] = []
        var now = start
        // Spend the budget; every answer comes 5 ms after its grant and says how many remain.
        while granted.count < 60, now < start + .seconds(3) {
            if case .granted(let ticket) = limiter.acquire(at: now, priority: .background) {
                granted.append(now)
                limiter.record(
                    .init(limit: 60, remaining: 60 - granted.count), for: ticket, at: now + .milliseconds(5))
            }
            now += .milliseconds(1)
        }
        #expect(granted.count == 60)
        #expect(limiter.roundTrip == .milliseconds(5))
        var next: ContinuousClock.Instant?
        while next == nil, now < start + .seconds(5) {
            if case .granted = limiter.acquire(at: now, priority: .background) { next = now }
            now += .milliseconds(1)
        }
        let freedAfter = next.map { $0 - granted[0] }
        #expect(
            freedAfter.map { $0 >= .milliseconds(3025) && $0 <= .milliseconds(3030) } == true,
            "\(String(describing: freedAfter))")
    }

    /// `count` replicas with unbounded demand sharing one token against a server with a sliding 60/3s window, each
    /// request arriving 5 ms after its grant and answered `answer` after it: returns the grants the server accepted
    /// and how many it refused (429s).
    func shareOneToken(
        replicas count: Int, for duration: Duration, answeredAfter answer: Duration = .milliseconds(20)
    ) -> (accepted: Int, rejected: Int) {
        let window = Duration.seconds(3)
        var serverLog: [ContinuousClock.Instant] = []
        var replicas = Array(repeating: RateLimiter(.datoCMSDefault), count: count)
        var inFlight:
            [(
                replica: Int, ticket: RateLimiter.Ticket, answerAt: ContinuousClock.Instant, remaining: Int,
                reset: Double
            )] = []
        var (accepted, rejected) = (0, 0)
        var now = start
        while now < start + duration {
            for (index, request) in inFlight.enumerated().reversed() where request.answerAt <= now {
                replicas[request.replica].record(
                    .init(
                        limit: 60, remaining: max(request.remaining, 0),
                        resetSeconds: request.remaining < 0 ? request.reset : nil, rateLimited: request.remaining < 0),
                    for: request.ticket, at: now)
                inFlight.remove(at: index)
            }
            for replica in replicas.indices {
                while case .granted(let ticket) = replicas[replica].acquire(at: now, priority: .submission) {
                    let arrival = now + .milliseconds(5)
                    serverLog.removeAll { $0 + window <= arrival }
                    let remaining: Int
                    // A 429 says when the oldest counted request leaves the window, as a sliding window does.
                    var reset = 0.0
                    if serverLog.count >= 60 {
                        rejected += 1
                        remaining = -1
                        reset = (serverLog[0] + window - arrival) / .seconds(1)
                    } else {
                        serverLog.append(arrival)
                        accepted += 1
                        remaining = 60 - serverLog.count
                    }
                    inFlight.append((replica, ticket, now + answer, remaining, reset))
                }
            }
            now += .milliseconds(1)
        }
        return (accepted, rejected)
    }

    /// Replicas sharing one token stay under its budget as long as the round trip is short against the window: each
    /// sees the others' requests only in the `Remaining` of its next response. (Beyond, measured with this
    /// simulation: 4 replicas at 300 ms and 8 at 100 ms or more overshoot it, 45, 14, 113 and 431 refused at 300,
    /// 100, 150 and 300 ms; the README says so.) What they use of it is the sharing reserve's price: 367–378 of 600
    /// requests with 2 replicas, 448–510 with 4, 532 with 8.
    @Test(arguments: [(2, 20), (2, 300), (4, 20), (4, 150), (8, 20), (8, 50)])
    func replicasSharingOneTokenStayUnderItsBudget(replicas: Int, answerMilliseconds: Int) {
        let (accepted, rejected) = shareOneToken(
            replicas: replicas, for: .seconds(30), answeredAfter: .milliseconds(answerMilliseconds))
        #expect(rejected <= 2, "429s: \(rejected)")
        #expect(accepted >= 360, "accepted in 30 s: \(accepted) of 600")
    }

    /// One replica with unbounded demand against a server with a sliding 60/3s window that answers after 20 ms:
    /// returns grant times and how many requests the server refused.
    func saturateAgainstSlidingServer(for duration: Duration) -> (grants: [ContinuousClock.Instant], rejected: Int) {
        let window = Duration.seconds(3)
        var limiter = RateLimiter(.datoCMSDefault)
        var serverLog: [ContinuousClock.Instant] = []
        var inFlight: [(ticket: RateLimiter.Ticket, answerAt: ContinuousClock.Instant, remaining: Int)] = []
        var grants: [ContinuousClock.Instant] = []
        var rejected = 0
        var now = start
        while now < start + duration {
            for (index, request) in inFlight.enumerated().reversed() where request.answerAt <= now {
                limiter.record(
                    .init(
                        limit: 60, remaining: max(request.remaining, 0), resetSeconds: request.remaining < 0 ? 1 : nil,
                        rateLimited: request.remaining < 0), for: request.ticket, at: now)
                inFlight.remove(at: index)
            }
            while case .granted(let ticket) = limiter.acquire(at: now, priority: .submission) {
                grants.append(now)
                let arrival = now + .milliseconds(5)
                serverLog.removeAll { $0 + window <= arrival }
                if serverLog.count >= 60 {
                    rejected += 1
                    inFlight.append((ticket, now + .milliseconds(20), -1))
                } else {
                    serverLog.append(arrival)
                    inFlight.append((ticket, now + .milliseconds(20), 60 - serverLog.count))
                }
            }
            now += .milliseconds(1)
        }
        return (grants, rejected)
    }

    @Test func aloneOnItsTokenItSpendsTheWholeBudgetWithoutStalls() {
        let (grants, rejected) = saturateAgainstSlidingServer(for: .seconds(30))
        #expect(rejected == 0)
        // The ceiling over 30 s is 600 requests; the first window paces a cold start.
        #expect(grants.count >= 540, "grants in 30 s: \(grants.count) of 600")
        // After the first window (spent at twice the average rate, then one pause until its first grant leaves
        // the window) grants flow steadily: no pause waits for a whole window.
        let steady = grants.filter { $0 > start + .seconds(4) }
        let gaps = zip(steady.dropFirst(), steady).map { $0 - $1 }
        #expect((gaps.max() ?? .zero) < .milliseconds(500), "longest pause between grants: \(gaps.max() ?? .zero)")
    }
}

@Suite struct ReactiveOnlyPacingTests {
    let start = ContinuousClock.now
    let limit = RateLimit(requests: 60, window: .seconds(3))

    @Test func grantsEveryRequestAtOnceWhileNoRateLimitWasSeen() {
        var limiter = RateLimiter(limit, pacing: .reactiveOnly)
        var granted = 0
        while case .granted = limiter.acquire(at: start, priority: .submission), granted < 500 { granted += 1 }
        #expect(granted == 500)
    }

    @Test func ignoresTheServersRemainingCount() {
        var limiter = RateLimiter(limit, pacing: .reactiveOnly)
        guard case .granted(let ticket) = limiter.acquire(at: start, priority: .background) else {
            Issue.record("first request not granted")
            return
        }
        limiter.record(.init(limit: 60, remaining: 0), for: ticket, at: start)
        guard case .granted = limiter.acquire(at: start + .milliseconds(1), priority: .background) else {
            Issue.record("reactive-only pacing held back a request without a 429")
            return
        }
    }

    @Test func waitsForTheResetOfA429AndNoLonger() {
        var limiter = RateLimiter(limit, pacing: .reactiveOnly)
        guard case .granted(let ticket) = limiter.acquire(at: start, priority: .submission) else {
            Issue.record("first request not granted")
            return
        }
        limiter.record(.init(limit: 60, remaining: 0, resetSeconds: 2, rateLimited: true), for: ticket, at: start)
        #expect(limiter.acquire(at: start + .seconds(1), priority: .submission) == .wait(until: start + .seconds(2)))
        guard case .granted = limiter.acquire(at: start + .seconds(2), priority: .submission) else {
            Issue.record("not granted after the reset")
            return
        }
        guard case .granted = limiter.acquire(at: start + .seconds(2), priority: .submission) else {
            Issue.record("reactive-only pacing spaced requests after the reset")
            return
        }
    }

    @Test func proactiveIsTheDefault() {
        #expect(RateLimiter(limit).pacing == .proactive)
        #expect(CMAClientConfiguration(apiToken: APIToken("t")).pacing == .proactive)
        #expect(CMAClientConfiguration(apiToken: APIToken("t")).pollStrategy == .adaptive)
    }
}
