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
/// - `factor` tracks a quantile of the completion time: every first-poll hit lowers it a little (faster after a
///   streak of hits, halving while nothing is known yet), every miss raises it more, so that about
///   `targetMissRate` of first polls miss. Misses cost one extra poll each; the hit steps keep the first poll close to
///   the true completion, so the completion is noticed soon after it happens.
///
/// In simulation with ±10 % job jitter, sequential or three jobs at a time, this settles near 1.22 polls per job with
/// completion noticed on average 10–15 % after the true duration (see `PollSchedulerTests`).
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
        /// Hits in a row after which the hit step doubles per further hit (to follow a speed-up quickly).
        public var accelerateAfterHits: Int
        /// Missed jobs remembered for the line.
        public var sampleCapacity: Int

        /// Creates a configuration.
        public init(
            priorBase: Duration = .seconds(1), priorPerUpload: Duration = .milliseconds(10),
            missBackoffFraction: Double = 0.1, minimumBackoff: Duration = .milliseconds(20),
            maximumBackoff: Duration = .seconds(10), hitStep: Double = 0.02, targetMissRate: Double = 0.2,
            accelerateAfterHits: Int = 12, sampleCapacity: Int = 32
        ) {
            self.priorBase = priorBase
            self.priorPerUpload = priorPerUpload
            self.missBackoffFraction = missBackoffFraction
            self.minimumBackoff = minimumBackoff
            self.maximumBackoff = maximumBackoff
            self.hitStep = hitStep
            self.targetMissRate = min(max(targetMissRate, 0.01), 0.9)
            self.accelerateAfterHits = max(0, accelerateAfterHits)
            self.sampleCapacity = max(1, sampleCapacity)
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
    private var hitStreak = 0

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

    /// Delay from the `misses`-th miss (1-based) to the next poll.
    public func delayAfterMiss(uploads: Int, misses: Int) -> Duration {
        if case .linear(let step) = strategy { return step }
        let fraction = isWarmedUp ? configuration.missBackoffFraction : max(configuration.missBackoffFraction, 0.25)
        var seconds = predictedDuration(uploads: uploads).seconds * fraction
        for _ in 0..<min(max(misses - 1, 0), 30) { seconds *= 2 }
        return min(max(Duration.seconds(seconds), configuration.minimumBackoff), configuration.maximumBackoff)
    }

    /// Learns from a finished job.
    ///
    /// - Parameters:
    ///   - uploads: ids in the job.
    ///   - lastMissAt: when the last poll that found it still running was sent (offset since submission), if any.
    ///   - foundAt: when the poll that found it finished was sent.
    public mutating func recordCompletion(uploads: Int, lastMissAt: Duration?, foundAt: Duration) {
        guard let lastMissAt else {
            hitStreak += 1
            if samples.isEmpty {
                factor *= 0.5
            } else {
                var step = configuration.hitStep
                for _ in 0..<min(max(hitStreak - configuration.accelerateAfterHits, 0), 10) { step *= 2 }
                factor *= 1 - min(step, 0.5)
            }
            factor = min(max(factor, 0.01), 100)
            return
        }
        hitStreak = 0
        let first = samples.isEmpty
        let sample = Sample(uploads: Double(max(uploads, 1)), seconds: (lastMissAt.seconds + foundAt.seconds) / 2)
        if samples.count < configuration.sampleCapacity {
            samples.append(sample)
        } else {
            samples[nextSlot] = sample
        }
        nextSlot = (nextSlot + 1) % configuration.sampleCapacity
        if first {
            factor = 1
        } else {
            let p = configuration.targetMissRate
            factor *= 1 + configuration.hitStep * (1 - p) / p
        }
        factor = min(max(factor, 0.01), 100)
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
