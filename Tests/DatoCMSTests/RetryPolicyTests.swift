import DatoCMS
import Testing

/// Deterministic generator for jitter.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(baseDelay: .milliseconds(100), maxDelay: .seconds(2), deadline: .seconds(30))

    @Test func backoffCeilingDoublesPerAttemptUpToTheCap() {
        #expect(policy.ceiling(afterAttempt: 1) == .milliseconds(100))
        #expect(policy.ceiling(afterAttempt: 2) == .milliseconds(200))
        #expect(policy.ceiling(afterAttempt: 4) == .milliseconds(800))
        #expect(policy.ceiling(afterAttempt: 6) == .seconds(2))
        #expect(policy.ceiling(afterAttempt: 60) == .seconds(2))
    }

    @Test func fullJitterSpreadsDelaysBetweenZeroAndTheCeiling() {
        var random = TestRandom(state: 7)
        var delays: [Duration] = []
        for _ in 0..<500 {
            guard case .retry(let delay) = policy.decide(afterAttempt: 3, elapsed: .zero, using: &random) else {
                Issue.record("must retry within the deadline")
                return
            }
            delays.append(delay)
        }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        #expect(delays.min()! < .milliseconds(40))
        #expect(delays.max()! > .milliseconds(360))
    }

    @Test func givesUpWhenTheDeadlineWouldPass() {
        var random = TestRandom(state: 1)
        #expect(policy.decide(afterAttempt: 1, elapsed: .seconds(30), using: &random) == .giveUp)
        #expect(
            policy.decide(afterAttempt: 1, elapsed: .seconds(29), honouredWait: .seconds(2), using: &random) == .giveUp)
        #expect(
            policy.decide(afterAttempt: 1, elapsed: .seconds(1), honouredWait: .seconds(2), using: &random)
                == .retry(after: .zero))
    }
}
