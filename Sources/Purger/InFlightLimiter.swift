public import DatoCMS

/// The token's budget as a process has used it so far: cumulative figures of the API client, read after every job.
public struct BudgetUse: Sendable, Equatable {
    /// Requests sent (answered or lost).
    public var requests: Int
    /// Time requests spent waiting for the rate limiter.
    public var waited: Duration
    /// 429 responses.
    public var rateLimited: Int

    /// Figures as read from the client.
    public init(requests: Int = 0, waited: Duration = .zero, rateLimited: Int = 0) {
        self.requests = requests
        self.waited = waited
        self.rateLimited = rateLimited
    }
}

extension BudgetUse {
    /// The figures of a client's statistics.
    public init(_ statistics: CMAClientStatistics) {
        self.init(
            requests: statistics.totalRequests, waited: statistics.rateLimitWaitTime,
            rateLimited: statistics.rateLimited)
    }
}

extension PipelineStateMachine.Configuration {
    /// The machine's limits for a worker's configuration and its API client's (the job timeout, and the budget
    /// in effect, for the adaptive bound).
    public init(_ configuration: PurgerConfiguration, client: CMAClientConfiguration) {
        let rate = client.rateLimit
        let jobTimeout = client.jobTimeout
        switch configuration.maxInFlightJobs {
        case .auto:
            self.init(
                maxInFlightJobs: InFlightBound.autoMaximum,
                adaptive: InFlightLimiter.Configuration(
                    requestsPerSecond: Double(rate.requests) / rate.window.seconds, initial: InFlightBound.autoInitial,
                    maximum: InFlightBound.autoMaximum),
                shutdownTimeout: configuration.shutdownTimeout, jobTimeout: jobTimeout,
                goneCacheCapacity: configuration.goneCacheSize, goneCacheMaximumAge: configuration.goneCacheTTL)
        case .fixed(let count):
            self.init(
                maxInFlightJobs: count, shutdownTimeout: configuration.shutdownTimeout, jobTimeout: jobTimeout,
                goneCacheCapacity: configuration.goneCacheSize, goneCacheMaximumAge: configuration.goneCacheTTL)
        }
    }
}

/// How many jobs to keep in flight (`PURGER_MAX_IN_FLIGHT_JOBS=auto`): pure, time passed in.
///
/// The right number depends on things nobody can configure by hand: the token's budget shared with other clients,
/// how long a job holds its slot, how many requests a job costs, and whether the API runs jobs in parallel or
/// queues them. The limiter measures in rounds (a round ends once `limit` jobs have finished, or at least
/// ``Configuration/minimumRoundJobs`` jobs over ``Configuration/minimumRoundDuration``) and climbs the throughput
/// hill, like the probing phase of TCP BBR and unlike a latency gradient (Netflix's Gradient2, Vegas), which cannot
/// tell a job that got slower from a job that queued behind others:
/// - **Throughput** is measured by Little's law: while work waits for a slot every slot is taken, so jobs end at the
///   bound ÷ their mean hold time per second — far steadier than counting the jobs that end in a few seconds, which
///   come in waves. Only jobs submitted once those in flight at the last move have ended count (before, they met
///   the API's queue of the old bound).
/// - **Probe**: it moves the bound by ``Configuration/step`` and measures throughput again. A move up that raised
///   throughput by at least ``Configuration/minimumElasticity`` of its own size is kept and followed by another;
///   one that did not is undone (the API queues jobs, or the budget is spent) and the next probe goes down. A move
///   down that cost throughput is undone; one that did not is followed by a bigger one (an API that runs one job at
///   a time keeps its throughput at any bound, so the bound falls until it does not matter: 1–2). Until a probe
///   first finds no gain, a probe up from a round that used less than ``Configuration/slowStartUtilization`` of
///   the budget doubles the bound (as TCP's slow start does; Little's cap below still holds). The first probe
///   goes down instead when jobs already hold their slots ``Configuration/queueingHold`` times as long as the
///   shortest job did (the API queues them). When throughput back at the bound a probe was undone from differs by
///   more than ``Configuration/drift`` from before the probe, the API changed during it (jobs got slower or faster):
///   the next probe goes up again.
/// - **Budget**: a round in which requests waited for the rate limiter longer than
///   ``Configuration/maximumWaitShare`` of a job's hold time lowers the bound at once (the budget is spent: more
///   jobs would only delay polls, so completions would be noticed later), and a 429 lowers it by a fifth.
/// - **Little's law** caps it: never more jobs than the budget can serve — requests per second ÷ requests per job
///   × the time a job holds its slot — with a quarter on top, nor more than
///   ``Configuration/maximum``; never fewer than one.
/// - Only rounds in which work waited for a slot at most job ends (a backlog) are measured: when nothing waits, the
///   bound limits nothing and throughput says nothing about it.
public struct InFlightLimiter: Sendable {
    /// Tuning; the defaults suit DatoCMS.
    public struct Configuration: Sendable, Equatable {
        /// The bound before anything is measured.
        public var initial: Int
        /// The bound never goes above this (a memory cap; also the fixed bound's range).
        public var maximum: Int
        /// The token's budget: requests per second.
        public var requestsPerSecond: Double
        /// Relative size of a probe.
        public var step: Double = 0.25
        /// A probe is worth keeping when throughput changes by at least this share of the probe's own change.
        public var minimumElasticity: Double = 0.5
        /// Share of the budget used in a round from which waiting for the rate limiter means the budget is spent.
        public var spentUtilization: Double = 0.85
        /// Relative decrease when the budget is spent.
        public var budgetCut: Double = 0.1
        /// Rate-limiter waiting per job, as a share of the hold time, above which the budget counts as spent.
        public var maximumWaitShare: Double = 0.1
        /// Probes down stop here.
        public var minimumProbe = 2
        /// Jobs a round takes at least.
        public var minimumRoundJobs = 4
        /// A round of fewer than `limit` jobs lasts at least this long.
        public var minimumRoundDuration: Duration = .seconds(3)
        /// Relative change of throughput at one bound, measured before a probe and again after it was undone, from
        /// which the API counts as changed meanwhile.
        public var drift: Double = 0.2
        /// Before the first probe, jobs that hold their slots this many times as long as the shortest job did mean
        /// that the API queues them: the first probe goes down.
        public var queueingHold: Double = 4
        /// Share of the budget used in a round below which a probe up doubles the bound.
        public var slowStartUtilization: Double = 2.0 / 3
        /// Measured rounds at one bound before the next probe.
        public var roundsBetweenProbes = 2

        /// A configuration for a token with this budget.
        public init(requestsPerSecond: Double, initial: Int = 16, maximum: Int = 256) {
            precondition(requestsPerSecond > 0 && maximum >= 1)
            self.requestsPerSecond = requestsPerSecond
            self.maximum = maximum
            self.initial = min(max(initial, 1), maximum)
        }
    }

    /// Why the bound is what it is (the `reason` label of `purger_in_flight_limit_reason`).
    public enum Reason: String, Sendable, CaseIterable {
        /// Nothing measured yet.
        case initial
        /// A probe up paid off, or a probe down cost throughput and was undone.
        case raised
        /// A probe did not change throughput: the API queues jobs (or the budget is spent).
        case noGain = "no_gain"
        /// Requests waited for the rate limiter: the budget is spent.
        case budgetSpent = "budget_spent"
        /// The budget cannot serve more (Little's law).
        case budgetCap = "budget_cap"
        /// The server answered 429.
        case rateLimited = "rate_limited"
    }

    private struct Round {
        var limit: Int
        var start: ContinuousClock.Instant
        var budget: BudgetUse
        var jobs = 0
        var backlogged = 0
        var holds: [Double] = []
        /// The first round after a move: its jobs were submitted under the old bound; not measured.
        var settling: Bool
    }

    private struct Measurement {
        var limit: Int
        var throughput: Double
    }

    /// The tuning in use.
    public let configuration: Configuration
    /// Jobs allowed in flight now.
    public private(set) var limit: Int
    /// Why.
    public private(set) var reason: Reason = .initial
    private var round: Round?
    /// The last measured round, at the bound a probe is compared with.
    private var last: Measurement?
    /// Where the next probe goes: +1 up, -1 down.
    private var direction = 1
    /// Probes down, and up, in a row (the second and later are twice as big).
    private var downStreak = 0
    private var upStreak = 0
    /// Measured rounds at the current bound.
    private var measuredRounds = 0
    /// The measurement at the bound the last undone probe went back to.
    private var undone: Measurement?
    /// The shortest hold of a job so far (seconds), and whether a probe was made.
    private var shortestHold: Double?
    private var probed = false
    /// Whether probes up still double the bound (until one finds no gain, or the budget says stop).
    private var slowStart = true
    /// Jobs submitted before this instant met the bound (and, when the API queues, the queue) of before the last
    /// move: they do not count for throughput.
    private var measuredFrom: ContinuousClock.Instant?
    /// Hold times (seconds) of the jobs submitted since `measuredFrom` and not yet measured.
    private var sample: [Double] = []

    /// A limiter at its initial bound.
    public init(configuration: Configuration) {
        self.configuration = configuration
        self.limit = configuration.initial
    }

    /// Learns from a finished job.
    ///
    /// - Parameters:
    ///   - hold: time from submission to its end (the slot was taken that long).
    ///   - backlog: whether work was waiting for a slot when it ended.
    ///   - budget: the client's cumulative figures after it.
    public mutating func jobFinished(
        hold: Duration, backlog: Bool, budget: BudgetUse, at now: ContinuousClock.Instant
    ) {
        guard var round else {
            round = Round(limit: limit, start: now, budget: budget, settling: true)
            measuredFrom = now
            return
        }
        round.jobs += 1
        if backlog { round.backlogged += 1 }
        round.holds.append(hold.seconds)
        shortestHold = min(shortestHold ?? hold.seconds, hold.seconds)
        if let measuredFrom, now - hold >= measuredFrom { sample.append(hold.seconds) }
        let elapsed = now - round.start
        let rateLimited = budget.rateLimited > round.budget.rateLimited
        guard
            rateLimited || round.jobs >= round.limit
                || (round.jobs >= configuration.minimumRoundJobs && elapsed >= configuration.minimumRoundDuration)
        else {
            self.round = round
            return
        }
        let before = limit
        end(round, elapsed: elapsed, budget: budget, rateLimited: rateLimited)
        if limit != before {
            measuredRounds = 0
            // The jobs in flight at the move end within about the longest hold of the round.
            measuredFrom = now.advanced(by: .seconds(round.holds.max() ?? 0))
            sample = []
        }
        self.round = Round(limit: limit, start: now, budget: budget, settling: limit != before)
    }

    private mutating func end(_ round: Round, elapsed: Duration, budget: BudgetUse, rateLimited: Bool) {
        if rateLimited {
            last = nil
            set(Int(Double(limit) * 0.8), .rateLimited)
            return
        }
        let jobs = Double(round.jobs)
        let hold = median(round.holds)
        let requestsPerJob = max(1, Double(budget.requests - round.budget.requests) / jobs)
        let waitPerJob = (budget.waited - round.budget.waited).seconds / jobs
        // Little's law: jobs per second the budget affords × how long each holds its slot.
        let served = configuration.requestsPerSecond / requestsPerJob * hold * 1.25
        let cap = Int(served.rounded(.up)) + 1
        // A settling round's jobs were submitted under another bound; the very first round also paid for the cold
        // start (the first polls on the prior, the rate limiter pacing before any server view).
        guard !round.settling else { return }
        if limit > cap {
            last = nil
            set(cap, .budgetCap)
            return
        }
        guard round.backlogged * 4 >= round.jobs * 3, elapsed > .zero else { return }
        let utilization =
            Double(budget.requests - round.budget.requests) / elapsed.seconds / configuration.requestsPerSecond
        // Requests also wait when the rate limiter spreads a burst (a wave of jobs submitted or polled together);
        // only waiting while the budget is nearly all used means it is spent.
        if utilization >= configuration.spentUtilization, waitPerJob > configuration.maximumWaitShare * hold {
            last = nil
            direction = 1
            set(Int((Double(limit) * (1 - configuration.budgetCut)).rounded()), .budgetSpent)
            return
        }
        guard sample.count >= configuration.minimumRoundJobs else { return }
        let measurement = Measurement(
            limit: round.limit, throughput: Double(round.limit) * Double(sample.count) / sample.reduce(0, +))
        let sampleHold = median(sample)
        sample = []
        measuredRounds += 1
        guard let last, last.limit != measurement.limit, last.throughput > 0 else {
            if let undone, undone.limit == measurement.limit,
                abs(measurement.throughput / undone.throughput - 1) > configuration.drift
            {
                // Back at the bound a probe was undone from, throughput is not what it was: the API changed during
                // the probe, whose verdict meant nothing. Probe upwards again.
                direction = 1
                slowStart = true
            }
            undone = nil
            self.last = measurement
            if measuredRounds >= configuration.roundsBetweenProbes {
                if !probed, let shortestHold {
                    // The first probe goes down when jobs already hold their slots far longer than the shortest
                    // job did: the API queues them.
                    direction = sampleHold > configuration.queueingHold * shortestHold ? -1 : 1
                }
                probed = true
                (upStreak, downStreak) = (0, 0)
                probe(cap: cap, utilization: utilization)
            }
            return
        }
        let change = Double(measurement.limit) / Double(last.limit) - 1
        let elasticity = (measurement.throughput / last.throughput - 1) / change
        let paid =
            change > 0 ? elasticity >= configuration.minimumElasticity : elasticity < configuration.minimumElasticity
        if paid {
            // Up and throughput followed, or down and it did not: go on the same way.
            self.last = measurement
            probe(cap: cap, utilization: utilization)
        } else {
            // Undo; the next probe goes the other way.
            self.last = nil
            undone = last
            slowStart = false
            (upStreak, downStreak) = (0, 0)
            direction = change > 0 ? -1 : 1
            set(last.limit, change > 0 ? .noGain : .raised)
        }
    }

    /// Moves the bound one step in `direction`; the second and later steps in a row are twice as big (up by half,
    /// down by half).
    private mutating func probe(cap: Int, utilization: Double) {
        downStreak = direction > 0 ? 0 : downStreak + 1
        upStreak = direction > 0 ? upStreak + 1 : 0
        // Up from a budget mostly unused, until a probe first finds no gain, the bound doubles (as in TCP's slow
        // start), up to Little's cap.
        let up =
            slowStart && utilization < configuration.slowStartUtilization
            ? 1.0 : (upStreak > 1 ? 2 * configuration.step : configuration.step)
        let factor = direction > 0 ? 1 + up : (downStreak > 1 ? 0.5 : 1 - configuration.step)
        var next = Int((Double(limit) * factor).rounded())
        if next == limit { next += direction }
        if direction < 0 && next < configuration.minimumProbe {
            // Below two, the gap between one job's end and the next one's start is never covered; only the budget
            // (Little's law, waits, 429s) lowers the bound further.
            direction = 1
            downStreak = 0
            if limit <= configuration.minimumProbe { return }
            next = configuration.minimumProbe
        }
        if next > cap {
            set(cap, .budgetCap)
        } else {
            set(next, direction > 0 ? .raised : .noGain)
        }
    }

    private mutating func set(_ target: Int, _ reason: Reason) {
        if reason != .raised { slowStart = false }
        if reason == .budgetCap || reason == .budgetSpent || reason == .rateLimited { (upStreak, downStreak) = (0, 0) }
        limit = min(max(target, 1), configuration.maximum)
        self.reason = limit == configuration.maximum && target > limit ? .budgetCap : reason
    }

    private func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
