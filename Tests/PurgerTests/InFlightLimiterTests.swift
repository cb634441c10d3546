import DatoCMSSimulator
import Purger
import Testing

/// The limiter against a model of the API on a virtual clock: a backlog of jobs, `limit` of them in flight; every
/// request goes through one FIFO budget of `requestsPerSecond`; a job is a POST, then its run (in parallel, or one
/// at a time per site), then one poll `notice` after its end (and a second one for every tenth job, as the poll
/// scheduler's misses cost).
@Suite struct InFlightLimiterTests {
    struct Model {
        var requestsPerSecond = 20.0
        var duration: (Double) -> Double = { _ in 1.5 }
        var serialized = false
        var notice = 0.15
        var latency = 0.01
        /// Results pushed: a job's end is known `notice` after it, without a poll.
        var pushed = false
    }

    struct Run {
        /// (time, limit) after every job.
        var limits: [(Double, Int)] = []
        /// Finish times of jobs.
        var finishes: [Double] = []
        var reasons: Set<InFlightLimiter.Reason> = []

        func throughput(from: Double, to: Double) -> Double {
            Double(finishes.count { $0 >= from && $0 < to }) / (to - from)
        }

        func limit(at time: Double) -> Int {
            limits.last { $0.0 <= time }?.1 ?? 0
        }

        /// Every change of the bound, as `time:bound`.
        var trace: String {
            var changes: [String] = []
            var last = 0
            for (time, bound) in limits where bound != last {
                changes.append("\(Int(time))s:\(bound)")
                last = bound
            }
            return changes.joined(separator: " ")
        }

        func meanLimit(from: Double, to: Double) -> Double {
            let window = limits.filter { $0.0 >= from && $0.0 < to }
            return Double(window.reduce(0) { $0 + $1.1 }) / Double(max(window.count, 1))
        }
    }

    private enum Step {
        case post(job: Int)
        case run(job: Int)
        case poll(job: Int, last: Bool)
    }

    private struct Pending {
        var time: Double
        var order: Int
        var step: Step
    }

    func simulate(_ model: Model, limiter: inout InFlightLimiter, seconds: Double, seed: UInt64 = 1) -> Run {
        var random = SplitMix64(seed: seed)
        let origin = ContinuousClock.now
        var run = Run()
        var queue: [Pending] = []
        var order = 0
        var budgetFree = 0.0
        var apiFree = 0.0
        var running = 0
        var jobs = 0
        var submittedAt: [Int: Double] = [:]
        var budget = BudgetUse()
        func schedule(_ step: Step, at time: Double) {
            order += 1
            let pending = Pending(time: time, order: order, step: step)
            let index = queue.firstIndex { ($0.time, $0.order) > (time, order) } ?? queue.endIndex
            queue.insert(pending, at: index)
        }
        /// Serves one request through the budget; returns when its answer arrives.
        func request(at time: Double) -> Double {
            let served = max(time, budgetFree)
            budgetFree = served + 1 / model.requestsPerSecond
            budget.requests += 1
            budget.waited += .seconds(served - time)
            return served + model.latency
        }
        func fill(at time: Double) {
            while running < limiter.limit {
                running += 1
                jobs += 1
                submittedAt[jobs] = time
                schedule(.post(job: jobs), at: time)
            }
        }
        fill(at: 0)
        while let next = queue.first, next.time < seconds {
            queue.removeFirst()
            let now = next.time
            switch next.step {
            case .post(let job):
                schedule(.run(job: job), at: request(at: now))
            case .run(let job):
                let start = model.serialized ? max(now, apiFree) : now
                let jitter = Double.random(in: 0.9...1.1, using: &random)
                let end = start + model.duration(start) * jitter
                if model.serialized { apiFree = end }
                if model.pushed {
                    schedule(.poll(job: job, last: true), at: end + model.notice)
                    continue
                }
                let missed = job % 10 == 0
                schedule(.poll(job: job, last: !missed), at: missed ? end - 0.05 : end + model.notice)
            case .poll(let job, let last):
                let answered = model.pushed ? now : request(at: now)
                guard last else {
                    schedule(.poll(job: job, last: true), at: answered + model.notice)
                    continue
                }
                // The answer arrives at `answered`; the model hands it to the limiter in time order.
                running -= 1
                run.finishes.append(answered)
                let hold = answered - (submittedAt.removeValue(forKey: job) ?? answered)
                limiter.jobFinished(
                    hold: .seconds(hold), backlog: true, budget: budget, at: origin.advanced(by: .seconds(answered)))
                run.limits.append((answered, limiter.limit))
                run.reasons.insert(limiter.reason)
                fill(at: answered)
            }
        }
        return run
    }

    static func limiter(requestsPerSecond: Double = 20, initial: Int = 16) -> InFlightLimiter {
        InFlightLimiter(configuration: .init(requestsPerSecond: requestsPerSecond, initial: initial))
    }

    /// Jobs of 1.5 s in parallel, 20 requests per second, ~2.1 requests per job: the ceiling is ~9.5 jobs/s and
    /// needs ~16-18 jobs in flight; 16 at start with its polls late, 8 far too few.
    @Test func aParallelAPISpendsTheBudget() {
        let ceiling = 20.0 / 2.1
        for initial in [4, 16, 64] {
            var limiter = Self.limiter(initial: initial)
            let run = simulate(Model(), limiter: &limiter, seconds: 120)
            let throughput = run.throughput(from: 60, to: 120)
            let limit = run.meanLimit(from: 60, to: 120)
            print(
                "parallel API from \(initial): \(throughput) jobs/s (\(Int(throughput / ceiling * 100)) %), bound \(limit)"
            )
            print("trace \(run.trace)")
            #expect(throughput >= 0.9 * ceiling, "from \(initial): \(throughput) jobs/s of \(ceiling)")
            #expect(limit < 40, "from \(initial): mean bound \(limit)")
        }
    }

    /// Results pushed (one request per job, the end known 3 ms after it): 20 requests per second serve 20 jobs of
    /// 1.5 s, which needs ~30 in flight; from 16 the bound doubles while the budget is mostly unused (within 10 s)
    /// and stays near it.
    @Test func withPushedResultsTheBoundClimbsToTheBudgetQuickly() {
        var limiter = Self.limiter()
        let run = simulate(Model(notice: 0.003, pushed: true), limiter: &limiter, seconds: 90)
        let early = run.throughput(from: 15, to: 30)
        let late = run.throughput(from: 30, to: 90)
        print("pushed results: \(early) jobs/s at 15-30 s, \(late) at 30-90 s of 20; trace \(run.trace)")
        #expect(run.limit(at: 10) >= 30, "slow start: the budget is mostly unused, the bound doubles; \(run.trace)")
        #expect(early >= 0.85 * 20, "\(early) jobs/s at 15-30 s")
        #expect(late >= 0.9 * 20, "\(late) jobs/s at 30-90 s")
        #expect(run.meanLimit(from: 30, to: 90) < 60, "mean bound \(run.meanLimit(from: 30, to: 90))")
    }

    /// An API that runs one job at a time: throughput is 1 / duration whatever the bound; the bound falls to ≤ 3,
    /// so jobs do not pile up in the API's queue.
    @Test func anAPIThatRunsOneJobAtATimeKeepsTheBoundAtThreeOrLess() {
        var limiter = Self.limiter()
        let run = simulate(Model(serialized: true), limiter: &limiter, seconds: 300)
        let throughput = run.throughput(from: 200, to: 300)
        print("serialized API: bound \(run.limit(at: 300)), \(throughput) jobs/s of \(1 / 1.5); trace \(run.trace)")
        #expect(run.limit(at: 300) <= 3, "bound \(run.limit(at: 300))")
        #expect(run.meanLimit(from: 200, to: 300) <= 3.5, "mean bound \(run.meanLimit(from: 200, to: 300))")
        #expect(throughput >= 0.9 / 1.5, "\(throughput) jobs/s")
    }

    /// Jobs twice as long from t = 60 s: the bound that spends the budget doubles, and follows within 30 s.
    @Test func aJobDurationThatDoublesIsFollowedWithinThirtySeconds() {
        var limiter = Self.limiter()
        let model = Model(duration: { $0 < 60 ? 1.5 : 3.0 })
        let run = simulate(model, limiter: &limiter, seconds: 120)
        let before = run.meanLimit(from: 40, to: 60)
        let after = run.meanLimit(from: 90, to: 120)
        let throughput = run.throughput(from: 90, to: 120)
        print(
            "duration doubled: bound \(before) -> \(after), \(throughput) jobs/s after; trace \(run.trace) \(run.reasons)"
        )
        #expect(after >= before * 1.5, "bound \(before) before, \(after) 30 s after")
        #expect(throughput >= 0.85 * 20 / 2.1, "\(throughput) jobs/s")
    }

    /// A token with a budget of 2 requests per second serves about one job per second: Little's law (with its
    /// quarter on top) caps the bound near one job per second × a hold of 1.7-3 s, and the budget is still spent.
    @Test func littlesLawCapsTheBoundAtWhatTheBudgetServes() {
        var limiter = Self.limiter(requestsPerSecond: 2)
        let run = simulate(Model(requestsPerSecond: 2), limiter: &limiter, seconds: 120)
        print("budget of 2: trace \(run.trace) \(run.reasons)")
        #expect(run.limit(at: 120) <= 5, "bound \(run.limit(at: 120))")
        #expect(run.throughput(from: 60, to: 120) >= 0.9 * 2 / 2.1, "\(run.throughput(from: 60, to: 120)) jobs/s")
        #expect(run.reasons.contains(.budgetCap) || run.reasons.contains(.budgetSpent))
    }

    @Test func aRateLimitedRoundLowersTheBoundByAFifth() {
        var limiter = Self.limiter(initial: 20)
        let start = ContinuousClock.now
        limiter.jobFinished(hold: .seconds(1), backlog: true, budget: BudgetUse(requests: 2), at: start)
        limiter.jobFinished(
            hold: .seconds(1), backlog: true, budget: BudgetUse(requests: 4, rateLimited: 1),
            at: start.advanced(by: .milliseconds(100)))
        #expect(limiter.limit == 16)
        #expect(limiter.reason == .rateLimited)
    }

    /// Without a backlog the bound limits nothing, and throughput says nothing about it: it stays.
    @Test func withoutABacklogTheBoundStays() {
        var limiter = Self.limiter(initial: 10)
        let start = ContinuousClock.now
        var budget = BudgetUse()
        for index in 0..<200 {
            budget.requests += 2
            limiter.jobFinished(
                hold: .seconds(1), backlog: false, budget: budget,
                at: start.advanced(by: .milliseconds(500 * index)))
        }
        #expect(limiter.limit == 10)
    }

    @Test func theBoundStaysWithinOneAndTheMaximum() {
        var limiter = InFlightLimiter(configuration: .init(requestsPerSecond: 1000, initial: 30, maximum: 32))
        let run = simulate(Model(requestsPerSecond: 1000), limiter: &limiter, seconds: 60)
        #expect(run.limits.allSatisfy { (1...32).contains($0.1) })
        #expect(run.limit(at: 60) == 32, "a budget that serves anything: the bound reaches the maximum")
    }
}
