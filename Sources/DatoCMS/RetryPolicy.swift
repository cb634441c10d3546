/// When and how long to wait before retrying a request: pure, with jitter from an injected generator.
///
/// - 429: wait for `X-RateLimit-Reset` (enforced by the ``RateLimiter`` for every request of the process), else back
///   off exponentially.
/// - 5xx, `transient: true` errors, timeouts, connection resets: exponential backoff with full jitter
///   (a uniformly random delay between zero and `min(maxDelay, baseDelay · 2^(attempt-1))`).
/// - Everything stops at `deadline`, measured from the first attempt.
public struct RetryPolicy: Sendable, Equatable {
    /// Backoff ceiling of the first retry.
    public var baseDelay: Duration
    /// Largest backoff ceiling.
    public var maxDelay: Duration
    /// Total budget, from the first attempt, after which no retry starts.
    public var deadline: Duration

    /// Creates a policy.
    public init(baseDelay: Duration, maxDelay: Duration, deadline: Duration) {
        self.baseDelay = baseDelay
        self.maxDelay = max(maxDelay, baseDelay)
        self.deadline = deadline
    }

    /// What the policy decides after a failed attempt.
    public enum Decision: Sendable, Equatable {
        /// Wait this long (possibly zero), then try again.
        case retry(after: Duration)
        /// Stop: the deadline would be passed.
        case giveUp
    }

    /// The backoff ceiling after `attempt` failed attempts (1-based): `min(maxDelay, baseDelay · 2^(attempt-1))`.
    public func ceiling(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let scaled = baseDelay * (1 << exponent)
        return min(scaled, maxDelay)
    }

    /// Decides about retrying after `attempt` failed attempts, `elapsed` after the first one started.
    ///
    /// - Parameters:
    ///   - honouredWait: a wait the caller must observe anyway (a 429's reset, enforced by the rate limiter); when
    ///     given, no extra backoff is added but the deadline still applies.
    public func decide(
        afterAttempt attempt: Int, elapsed: Duration, honouredWait: Duration? = nil,
        using generator: inout some RandomNumberGenerator
    ) -> Decision {
        let delay: Duration
        if let honouredWait {
            delay = .zero
            if elapsed + honouredWait >= deadline { return .giveUp }
        } else {
            let ceiling = ceiling(afterAttempt: attempt)
            let nanoseconds = ceiling.nanoseconds
            delay = nanoseconds > 0 ? .nanoseconds(Int64.random(in: 0...nanoseconds, using: &generator)) : .zero
        }
        if elapsed + delay >= deadline { return .giveUp }
        return .retry(after: delay)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled + attoseconds / 1_000_000_000
    }

    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
