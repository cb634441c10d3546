/// The state of an asynchronous job as `GET /job-results/:id` reports it.
public enum JobResult: Sendable, Equatable {
    /// The job is still running (the API answers 404).
    case pending
    /// The job finished.
    case finished(FinishedJob)
}

/// The result of a finished job.
public struct FinishedJob: Sendable, Equatable {
    /// `attributes.status`: the HTTP status of the underlying operation (200 when it ran).
    public var status: Int
    /// `payload.meta.successful`, when the payload carried counts.
    public var successful: Int?
    /// `payload.meta.failed`, when the payload carried counts.
    public var failed: Int?
    /// `CODE: details` from the payload's error document when `status` is not 2xx.
    public var error: String?

    /// Creates a job result.
    public init(status: Int, successful: Int?, failed: Int?, error: String?) {
        self.status = status
        self.successful = successful
        self.failed = failed
        self.error = error
    }

    /// Whether the underlying operation succeeded (2xx).
    public var succeeded: Bool { (200..<300).contains(status) }
}
