/// What the simulator has seen and done; also served as JSON at `GET /_simulator/stats`.
public struct SimulatorStats: Sendable, Codable, Equatable {
    /// One job as the simulator ran it.
    public struct Job: Sendable, Codable, Equatable {
        /// The job id.
        public var id: String
        /// Ids submitted.
        public var uploads: Int
        /// How long the job took to finish, in seconds.
        public var durationSeconds: Double
        /// Job-result requests for this job, the one that returned the result included.
        public var polls: Int
        /// When the result was first returned, in seconds after the job started; `nil` while nobody saw it.
        public var noticedAfterSeconds: Double?
        /// Whether the job finished with status 500.
        public var failedWith500: Bool
        /// Uploads this job deleted (its result's `meta.successful`); 0 while it runs.
        public var deleted: Int
        /// Whether the job's `202` answer was dropped by the lost-response fault (its id never reached the client).
        public var responseLost: Bool
        /// When the job started, in seconds since 1970.
        public var startedAt: Double
        /// The ids submitted, for jobs whose answer was lost (so that tests can attribute their deletions); `nil`
        /// for the others, to keep the statistics small.
        public var lostUploadIDs: [String]?
    }

    /// The most jobs that were started and whose result nobody had seen yet, at any moment: the jobs a client had
    /// in flight.
    public var maxOpenJobs = 0
    /// Responses by endpoint (`bulk_destroy`, `job_result`, `uploads`) and status code.
    public var requests: [String: [String: Int]] = [:]
    /// 429 responses (over the limit or load shedding).
    public var rateLimited = 0
    /// Requests that arrived before the `X-RateLimit-Reset` of an earlier 429 to the same token had passed (requests
    /// arriving within 50 ms of the 429 are not counted: their client could not have seen it yet).
    public var requestsBeforeReset = 0
    /// The most API requests received in any window of the rate limit's length.
    public var maxRequestsInWindow = 0
    /// That window's length in seconds.
    public var windowSeconds = 0.0
    /// Uploads left per environment (`primary` for the primary one).
    public var uploadsLeft: [String: Int] = [:]
    /// Jobs started.
    public var jobsStarted = 0
    /// Jobs whose result has been returned at least once.
    public var jobsNoticed = 0
    /// Jobs whose result was pushed to a subscriber before any poll returned it.
    public var pushedResults = 0
    /// `job-result` events dropped by the push fault.
    public var pushEventsDropped = 0
    /// Uploads deleted by jobs.
    public var deletions = 0
    /// Uploads deleted by "another client" (``SimulatorConfiguration/externalDeletionsPerSecond``), not by a job.
    public var externalDeletions = 0
    /// Times an already deleted id was deleted again (must stay 0; a store cannot do it, this double-checks).
    public var doubleDeletions = 0
    /// Bulk-destroy responses dropped by the lost-response fault.
    public var lostResponses = 0
    /// Faults injected by kind.
    public var faultsInjected: [String: Int] = [:]
    /// Every job.
    public var jobs: [Job] = []

    /// Average job-result requests per job whose result was returned.
    public var pollsPerNoticedJob: Double {
        let noticed = jobs.filter { $0.noticedAfterSeconds != nil }
        return noticed.isEmpty ? 0 : Double(noticed.reduce(0) { $0 + $1.polls }) / Double(noticed.count)
    }

    /// For noticed jobs: (noticed after − duration) / duration, averaged.
    public var meanNoticeDelayRatio: Double {
        let ratios = noticeDelayRatios
        return ratios.isEmpty ? 0 : ratios.reduce(0, +) / Double(ratios.count)
    }

    /// For noticed jobs: the largest (noticed after − duration) / duration.
    public var maxNoticeDelayRatio: Double { noticeDelayRatios.max() ?? 0 }

    private var noticeDelayRatios: [Double] {
        jobs.compactMap { job in
            guard let noticed = job.noticedAfterSeconds, job.durationSeconds > 0 else { return nil }
            return (noticed - job.durationSeconds) / job.durationSeconds
        }
    }
}
