/// When to poll a job result, learned from the jobs that finished before: pure, time passed in as offsets since
/// the job was submitted.
///
/// The official client polls at 1, 2, 3, … s, spending a request per second of job time. This scheduler polls first
/// at a predicted completion time `factor · line(n)` and, after a miss, backs off briefly (a fraction of the
/// prediction, doubling per further miss).
///
/// - `line(n) = base + perUpload · n` is a least-squares fit over recent jobs that missed their first poll: for
///   those the completion is known to lie between the last miss and the finding poll, and the midpoint is used.
///   A job found on its first poll only says it finished *before* the poll, so it does not feed the line.
/// - `factor` tracks a quantile of the completion time: every first-poll hit lowers it a little below the factor
///   that job was planned with, every miss raises it more above it, so that about `targetMissRate` of first polls
///   miss. Misses cost one extra poll each; the hit steps keep the first poll close to the true completion, so the
///   completion is noticed soon after it happens. Steps are relative to the job's plan, not cumulative: jobs in
///   flight together were planned alike, and counting each would move the factor by the concurrency times the
///   step (with 8 jobs in flight that doubled the misses).
/// - Before any job has missed, a hit lowers the prediction to 70 % of *the one that job was polled at*, so jobs
///   that were submitted together (a backlog at start) lower it once, not once each (halving made the first misses
///   so early that their search cost several polls each); and a miss is followed by
///   polls a quarter of the elapsed time apart (a search upwards from a prediction that was too short).
/// - A miss found more than ``Configuration/outlierRatio`` times its plan after submission is a stall, not a
///   duration: it moves the factor one step up and stays out of the line. Before, a few
///   jobs held 20 s by the API planned every later 0.2 s job at 20 s, and hits walked that back by 2 % per wave of
///   jobs (a test's surviving member noticed its jobs that late for minutes).
/// - A hit is evidence only when the poll went out on time. A poll that waited for the rate limiter (or for a busy
///   process) found the job later than planned, which says nothing about whether the plan was early enough; such
///   hits are ignored.
///
/// In simulation with ±10 % job jitter, from one to sixteen jobs at a time, with or without polls delayed by a
/// congested rate limiter, this averages 1.1–1.3 polls per job, warm-up from the prior included, with completion
/// noticed on average 10–20 % after the true duration (see `PollSchedulerTests`). The price of not accelerating
/// on streaks of hits: after jobs speed up, the first poll moves earlier by only `hitStep` per wave of jobs, so
/// completion is noticed late for a while (no extra polls are spent).
///
/// ``Strategy/linear(step:)`` replaces all of this with the official client's schedule, for comparisons: the first
/// poll `step` after submission and every further one `step` after the previous answer; nothing is learned.
public struct PollScheduler: Sendable {
    /// How poll times are chosen.
    public enum Strategy: Sendable, Equatable {
        /// Predicted completion times learned from earlier jobs (the default).
        case adaptive
        /// A poll every `step` (the official JS client: 1, 2, 3, … s), with no limit on polls per job.
        case linear(step: Duration)
    }

    /// Tuning knobs; the defaults suit DatoCMS.
    public struct Configuration: Sendable, Equatable {
        /// Prediction before any job missed a poll: fixed part.
        public var priorBase: Duration
        /// Prediction before any job missed a poll: cost per upload id.
        public var priorPerUpload: Duration
        /// Backoff after the first miss, as a fraction of the prediction; doubles per further miss.
        public var missBackoffFraction: Double
        /// Shortest backoff after a miss.
        public var minimumBackoff: Duration
        /// Longest wait between two polls of one job.
        public var maximumBackoff: Duration
        /// Relative decrease of the factor per first-poll hit.
        public var hitStep: Double
        /// Share of first polls that should miss; sets the increase per miss to `hitStep · (1 − p) / p`.
        public var targetMissRate: Double
        /// Missed jobs remembered for the line.
        public var sampleCapacity: Int
        /// A job found more than this many times its planned first poll after submission is an outlier (a stall):
        /// it raises the factor one step but does not enter the line.
        public var outlierRatio: Double

        /// Creates a configuration.
        public init(
            priorBase: Duration = .seconds(1), priorPerUpload: Duration = .milliseconds(10),
            missBackoffFraction: Double = 0.1, minimumBackoff: Duration = .milliseconds(20),
            maximumBackoff: Duration = .seconds(10), hitStep: Double = 0.02, targetMissRate: Double = 0.1,
            sampleCapacity: Int = 32, outlierRatio: Double = 4
        ) {
            self.priorBase = priorBase
            self.priorPerUpload = priorPerUpload
            self.missBackoffFraction = missBackoffFraction
            self.minimumBackoff = minimumBackoff
            self.maximumBackoff = maximumBackoff
            self.hitStep = hitStep
            self.targetMissRate = min(max(targetMissRate, 0.01), 0.9)
            self.sampleCapacity = max(1, sampleCapacity)
            self.outlierRatio = max(outlierRatio, 1)
        }
    }

    private struct Sample {
        var uploads: Double
        var seconds: Double
    }

    /// The tuning in use.
    public let configuration: Configuration
    /// Adaptive (default) or linear.
    public let strategy: Strategy
    private var samples: [Sample] = []
    private var nextSlot = 0
    private var factor = 1.0

    /// A scheduler that knows only its prior.
    public init(configuration: Configuration = .init(), strategy: Strategy = .adaptive) {
        self.configuration = configuration
        self.strategy = strategy
    }

    /// Whether a job has missed a poll yet, i.e. the line is learned rather than the prior.
    public var isWarmedUp: Bool { !samples.isEmpty }

    /// Predicted completion time of a job deleting `uploads` ids: where its first poll goes.
    public func predictedDuration(uploads: Int) -> Duration {
        .seconds(max(factor * line(Double(max(uploads, 1))), 0.001))
    }

    /// Delay from submission to the first poll.
    public func firstPollDelay(uploads: Int) -> Duration {
        if case .linear(let step) = strategy { return step }
        return predictedDuration(uploads: uploads)
    }

    /// Delay from the `misses`-th miss (1-based), sent `elapsed` after submission, to the next poll.
    ///
    /// Once a job has missed, the next poll follows a fraction of the prediction later, doubling per further miss.
    /// Before any job has missed, the prediction is a guess that just proved too short, so the next polls go a
    /// quarter of the elapsed time apart instead (the first missed job's interval, whose midpoint seeds the line,
    /// stays within 25 % of its duration; doubling seeded it 50 % too long and took 18 waves of jobs to walk back).
    public func delayAfterMiss(uploads: Int, misses: Int, elapsed: Duration) -> Duration {
        if case .linear(let step) = strategy { return step }
        var seconds: Double
        if isWarmedUp {
            seconds = predictedDuration(uploads: uploads).seconds * configuration.missBackoffFraction
            for _ in 0..<min(max(misses - 1, 0), 30) { seconds *= 2 }
        } else {
            seconds = elapsed.seconds * 0.25
        }
        return min(max(Duration.seconds(seconds), configuration.minimumBackoff), configuration.maximumBackoff)
    }

    /// Learns from a finished job.
    ///
    /// - Parameters:
    ///   - uploads: ids in the job.
    ///   - plannedFirstPoll: the ``firstPollDelay(uploads:)`` the job was given when it was submitted.
    ///   - lastMissAt: when the last poll that found it still running was sent (offset since submission), if any.
    ///   - foundAt: when the poll that found it finished was sent.
    public mutating func recordCompletion(
        uploads: Int, plannedFirstPoll: Duration, lastMissAt: Duration?, foundAt: Duration
    ) {
        // The factor this job was planned with; updates are relative to it, so that jobs planned alike (a wave of
        // concurrent jobs) move the factor one step, not one step each.
        let planned = plannedFirstPoll.seconds / line(Double(max(uploads, 1)))
        guard let lastMissAt else {
            let lateness = foundAt - plannedFirstPoll
            guard lateness <= max(configuration.minimumBackoff, plannedFirstPoll * 0.1) else { return }
            factor = min(factor, planned * (samples.isEmpty ? 0.7 : 1 - configuration.hitStep))
            factor = min(max(factor, 0.01), 100)
            return
        }
        let first = samples.isEmpty
        let sample = Sample(uploads: Double(max(uploads, 1)), seconds: (lastMissAt.seconds + foundAt.seconds) / 2)
        let p = configuration.targetMissRate
        if sample.seconds > plannedFirstPoll.seconds * configuration.outlierRatio {
            // A stall (a job stuck in the API's queue, an outage): one step up for the miss, but kept out of the
            // line, which would otherwise plan every later job on it and notice them all that late, since hits
            // lower the factor by one small step per wave. A lasting slowdown raises the factor wave by wave until
            // jobs finish within the ratio of their plan, and then enters the line. Before the first sample too:
            // the first jobs of a worker started during a stall are not its jobs' duration either.
            factor = min(max(factor, planned * (1 + configuration.hitStep * (1 - p) / p)), 100)
            return
        }
        if samples.count < configuration.sampleCapacity {
            samples.append(sample)
        } else {
            samples[nextSlot] = sample
        }
        nextSlot = (nextSlot + 1) % configuration.sampleCapacity
        if first {
            factor = 1
        } else {
            factor = max(factor, planned * (1 + configuration.hitStep * (1 - p) / p))
        }
        factor = min(max(factor, 0.01), 100)
    }

    /// Learns from a job whose completion was observed as it happened (its pushed result): an exact sample of the
    /// line, except a stall (longer than ``Configuration/outlierRatio`` times the prediction), which stays out.
    /// The factor is left alone: it is a quantile of the polls' hits and misses, and no poll was sent.
    public mutating func recordObservedDuration(uploads: Int, duration: Duration) {
        if !samples.isEmpty, duration > predictedDuration(uploads: uploads) * configuration.outlierRatio { return }
        let sample = Sample(uploads: Double(max(uploads, 1)), seconds: duration.seconds)
        if samples.count < configuration.sampleCapacity {
            samples.append(sample)
        } else {
            samples[nextSlot] = sample
        }
        nextSlot = (nextSlot + 1) % configuration.sampleCapacity
        if samples.count == 1 { factor = 1 }
    }

    // MARK: - Model

    private func prior(_ uploads: Double) -> Double {
        configuration.priorBase.seconds + configuration.priorPerUpload.seconds * uploads
    }

    private func line(_ uploads: Double) -> Double {
        guard !samples.isEmpty else { return prior(uploads) }
        let count = Double(samples.count)
        let meanN = samples.reduce(0) { $0 + $1.uploads } / count
        let meanT = samples.reduce(0) { $0 + $1.seconds } / count
        let varianceN = samples.reduce(0) { $0 + ($1.uploads - meanN) * ($1.uploads - meanN) } / count
        // Too few samples, or sizes too alike, to separate fixed and per-id cost: keep the prior's shape, scaled.
        guard samples.count >= 8, varianceN.squareRoot() > 0.05 * meanN else {
            return meanT * prior(uploads) / prior(meanN)
        }
        let covariance = samples.reduce(0) { $0 + ($1.uploads - meanN) * ($1.seconds - meanT) } / count
        var slope = covariance / varianceN
        var intercept = meanT - slope * meanN
        if slope < 0 {
            slope = 0
            intercept = meanT
        } else if intercept < 0 {
            intercept = 0
            slope = meanT / meanN
        }
        return intercept + slope * uploads
    }
}
