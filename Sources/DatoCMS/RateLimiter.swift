/// The process-wide request budget as a pure state machine: callers pass the time and get a decision.
///
/// Three constraints, the tightest wins:
/// - **Local sliding window**: at most `limit` grants in any `window` (the configured `DATOCMS_RATE_LIMIT`, lowered
///   to the server's `X-RateLimit-Limit` when that is smaller).
/// - **Server view**: `X-RateLimit-Remaining` is the only truth shared by replicas using one token. After a response
///   saying `r` requests remain, at most `r` grants made after that request are allowed until a slot frees: one
///   window after the response at the latest, or when this process's oldest grant in the window leaves it. Grants that the server had already counted
///   are counted again, which errs on the safe side. With no fresh server view (start, after idling) grants are
///   paced at `window / limit` so a cold start cannot burst before the first response arrives.
/// - **Sharing**: when the server has counted more requests than this process made (another replica uses the token),
///   a tenth of the budget is left unspent and the rest is paced over a quarter window (`window / 4 / available`)
///   instead of sent at once, so replicas that see the same `Remaining` do not all spend it. A process alone on its
///   token keeps the whole budget, paced at no more than twice the average rate (`window / (2 · limit)`).
/// - **429**: no grant before `X-RateLimit-Reset` seconds have passed; without the header, none for one window.
///
/// Polls and lookups may use the whole budget; submissions leave one request of it (when the budget is 10 or more),
/// so that when the budget is short a poll that is due goes before new work: finishing jobs comes before starting
/// more, and completions are not noticed later as more jobs are in flight. (Polls cannot starve submissions: there
/// are never more jobs to poll than jobs in flight.)
///
/// With ``Pacing/reactiveOnly`` (for comparisons only) every constraint but the 429 block is off: requests go out as
/// soon as they are asked for, and only a 429's `X-RateLimit-Reset` holds them back, as in the official JS client.
public struct RateLimiter: Sendable {
    /// Whether the limiter spends the budget proactively or only reacts to 429s.
    public enum Pacing: Sendable, Equatable {
        /// The default: the sliding window, the server's `Remaining`, sharing margins and the 429 block.
        case proactive
        /// Only the 429 block: no grant before `X-RateLimit-Reset` has passed, no limit otherwise. Meant for
        /// benchmarks that compare against clients without pacing; a worker sharing a token must not use it.
        case reactiveOnly
    }

    /// Who is asking; submissions leave a request for polls and lookups.
    public enum Priority: Sendable, Equatable {
        /// A bulk-destroy POST: new work, leaves the last request of the budget to polls.
        case submission
        /// A job-result poll, an uploads lookup or a ping: may use the whole budget.
        case background
    }

    /// Proof of a grant, handed back with the response headers so they can be matched to the request.
    public struct Ticket: Sendable, Equatable {
        /// Grants are numbered in order.
        public let sequence: UInt64
        /// When it was granted, i.e. just before the request was sent.
        public let grantedAt: ContinuousClock.Instant
    }

    /// The outcome of ``acquire(at:priority:)``.
    public enum Decision: Sendable, Equatable {
        /// Send now; the grant is recorded.
        case granted(Ticket)
        /// Ask again at this instant (another caller may take the slot first).
        case wait(until: ContinuousClock.Instant)
    }

    /// What a response told us about the server's budget.
    public struct ServerFeedback: Sendable, Equatable {
        /// `X-RateLimit-Limit`.
        public var limit: Int?
        /// `X-RateLimit-Remaining`.
        public var remaining: Int?
        /// `X-RateLimit-Reset` in seconds, when the response was a 429.
        public var resetSeconds: Double?
        /// Whether the response was a 429.
        public var rateLimited: Bool

        /// Creates feedback from parsed headers.
        public init(limit: Int? = nil, remaining: Int? = nil, resetSeconds: Double? = nil, rateLimited: Bool = false) {
            self.limit = limit
            self.remaining = remaining
            self.resetSeconds = resetSeconds
            self.rateLimited = rateLimited
        }
    }

    private struct Observation {
        var afterSequence: UInt64
        var remaining: Int
        var expiresAt: ContinuousClock.Instant
        /// When this process made the requests the server had counted in `remaining` (those still in the local
        /// window): each frees a slot on the server once it leaves the window.
        var counted: [ContinuousClock.Instant] = []
    }

    /// The configured budget.
    public let configured: RateLimit
    /// Proactive (default) or reactive-only pacing.
    public let pacing: Pacing
    private var serverLimit: Int?
    private var grants: [ContinuousClock.Instant] = []
    private var nextSequence: UInt64 = 0
    private var lastGrant: ContinuousClock.Instant?
    private var observation: Observation?
    private var sharedUntil: ContinuousClock.Instant?
    /// The longest recent time from a grant to its response (decaying by a tenth per response); `nil` before the
    /// first response.
    public private(set) var roundTrip: Duration?
    /// No grant before this instant (set by 429s).
    public private(set) var blockedUntil: ContinuousClock.Instant?

    /// A limiter with the configured budget and no history.
    public init(_ rateLimit: RateLimit, pacing: Pacing = .proactive) {
        self.configured = rateLimit
        self.pacing = pacing
    }

    /// Requests allowed per window: the configured budget, lowered to the server's `X-RateLimit-Limit`.
    public var effectiveLimit: Int { max(1, min(configured.requests, serverLimit ?? .max)) }

    /// Grants the request now, or says when to ask again.
    public mutating func acquire(at now: ContinuousClock.Instant, priority: Priority) -> Decision {
        if pacing == .reactiveOnly {
            if let blockedUntil, blockedUntil > now { return .wait(until: blockedUntil) }
            return grant(at: now)
        }
        let window = configured.window
        let limit = effectiveLimit
        let reserve = priority == .submission && limit >= 10 ? 1 : 0
        if let first = grants.first, first + window <= now {
            grants.removeAll { $0 + window <= now }
        }
        var earliest = now
        if let blockedUntil, blockedUntil > earliest { earliest = blockedUntil }
        let needed = grants.count + reserve - limit
        if needed >= 0 {
            let expiring = grants[min(needed, grants.count - 1)] + window
            if expiring > earliest { earliest = expiring }
        }
        if let observation, observation.expiresAt > now {
            let usedSince = Int(truncatingIfNeeded: nextSequence &- 1 &- observation.afterSequence)
            let shared = sharedUntil.map { $0 > now } ?? false
            // Replicas seeing the same `Remaining` race for the last slots: leave a tenth of the budget unspent.
            let sharingMargin = shared ? max(1, limit / 10) : 0
            // Alone on the token, our own counted requests free their slots as they leave the window (plus a
            // margin for their travel time: the server counts a request from when it arrived, at most one round
            // trip after its grant): without this, the process would stall for a window after each exhaustion.
            // Sharing it, other replicas' timing is unknown: wait for the whole window, as before.
            let margin = max(window / (2 * limit), min(window / 20, roundTrip ?? window / 20))
            let freed = shared ? 0 : observation.counted.prefix { $0 + window + margin <= now }.count
            let available = observation.remaining + freed - reserve - sharingMargin - usedSince
            if available <= 0 {
                var resume = observation.expiresAt
                if !shared, freed < observation.counted.count {
                    resume = min(resume, observation.counted[freed] + window + margin)
                }
                if resume > earliest { earliest = resume }
            } else if let lastGrant {
                // Alone: never faster than twice the average rate, so replicas that start together cannot each
                // spend the whole `Remaining` before their next response shows the other; and at the average rate
                // once less than half the budget is left, so the budget is never spent in a burst followed by a
                // pause until its first request leaves the window.
                let alone = available * 2 >= limit ? window / (2 * limit) : window / limit
                let paced = lastGrant + (shared ? window / 4 / available : alone)
                if paced > earliest { earliest = paced }
            }
        } else if let lastGrant {
            let paced = lastGrant + window / limit
            if paced > earliest { earliest = paced }
        }
        if earliest > now {
            return .wait(until: earliest)
        }
        return grant(at: now)
    }

    private mutating func grant(at now: ContinuousClock.Instant) -> Decision {
        let ticket = Ticket(sequence: nextSequence, grantedAt: now)
        nextSequence += 1
        if pacing == .proactive { grants.append(now) }
        lastGrant = now
        return .granted(ticket)
    }

    /// Learns from the rate-limit headers of the response to the request holding `ticket`.
    public mutating func record(_ feedback: ServerFeedback, for ticket: Ticket, at now: ContinuousClock.Instant) {
        if let limit = feedback.limit, limit > 0 { serverLimit = limit }
        let trip = max(now - ticket.grantedAt, .zero)
        roundTrip = max(trip, (roundTrip ?? trip) * 0.9)
        if feedback.rateLimited {
            let wait: Duration
            if let reset = feedback.resetSeconds, reset >= 0 {
                wait = .milliseconds(Int64((reset * 1000).rounded(.up)))
            } else {
                wait = configured.window
            }
            let until = now + wait
            if blockedUntil.map({ until > $0 }) ?? true { blockedUntil = until }
            // The server's budget is spent until the reset; after it, pace until a response tells us more.
            observation = Observation(afterSequence: ticket.sequence, remaining: 0, expiresAt: until)
            return
        }
        if let remaining = feedback.remaining {
            let limit = feedback.limit ?? effectiveLimit
            let countedByServer = limit - remaining
            let madeHere = grants.filter { $0 + configured.window > now }.count
            if countedByServer > madeHere + 1 {
                sharedUntil = now + configured.window
            }
            let isNewer = observation.map { $0.expiresAt <= now || ticket.sequence >= $0.afterSequence } ?? true
            if isNewer {
                // Grants made after this request are in flight and not counted in `remaining`.
                let inFlight = Int(truncatingIfNeeded: nextSequence &- 1 &- ticket.sequence)
                let recent = grants.filter { $0 + configured.window > now }
                observation = Observation(
                    afterSequence: ticket.sequence, remaining: max(0, remaining), expiresAt: now + configured.window,
                    counted: Array(recent.dropLast(min(inFlight, recent.count))))
            }
        }
    }
}
