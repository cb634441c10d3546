/// A snapshot of what a ``CMAClient`` has done since it was created.
public struct CMAClientStatistics: Sendable, Equatable {
    /// Responses by endpoint (`bulk_destroy`, `job_result`, `uploads`) and status (`"202"`, `"404"`, …, or
    /// `"network_error"` when no response arrived).
    public var requests: [String: [String: Int]] = [:]
    /// 429 responses.
    public var rateLimited = 0
    /// Times a request had to wait for the rate limiter.
    public var rateLimitWaits = 0
    /// Total time requests spent waiting for the rate limiter.
    public var rateLimitWaitTime: Duration = .zero
    /// Retries after 429s, 5xx, transient errors and network errors.
    public var retries = 0
    /// Bulk-destroy POSTs sent.
    public var submissions = 0
    /// Bulk-destroy POSTs whose response was lost after they may have reached the server.
    public var lostSubmissions = 0
    /// Job-result GETs sent.
    public var polls = 0
    /// Job-result GETs sent for jobs that finished (excludes jobs that timed out).
    public var pollsForFinishedJobs = 0
    /// Jobs whose result was received.
    public var jobsFinished = 0
    /// Jobs whose result came by push (see ``JobResultSource``); the rest of ``jobsFinished`` were polled.
    public var pushedResults = 0
    /// Batches split in two after a non-retryable rejection.
    public var bisections = 0

    /// Creates empty statistics.
    public init() {}

    /// Total requests that got a response or a network error.
    public var totalRequests: Int { requests.values.reduce(0) { $0 + $1.values.reduce(0, +) } }

    /// Average polls per finished job; 0 before any job finished.
    public var pollsPerFinishedJob: Double {
        jobsFinished == 0 ? 0 : Double(pollsForFinishedJobs) / Double(jobsFinished)
    }
}
