#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// What happened to one bulk deletion, end to end: the value behind the contract's completion event.
///
/// `successful + failed == requested` holds for every status.
public struct BulkDestroyOutcome: Sendable, Equatable {
    /// The contract's `status`.
    public enum Status: String, Sendable {
        /// At least one job ran and the counts come from job results (and lookups on the lost-response path).
        case completed
        /// The API refused the whole operation with a non-retryable error; nothing was deleted.
        case rejected
        /// No job result within the job timeout, or the API stayed unavailable past the retry deadline;
        /// the ids whose fate is unknown are counted as failed and the request should be replayed.
        case timedOut = "timed_out"
    }

    /// The overall status.
    public var status: Status
    /// Every job started for these ids, in order (several after bisection or resubmission). A job whose
    /// `202` response was lost is not listed, because its id never reached us.
    public var jobIDs: [JobID]
    /// The worst (highest) `attributes.status` among the finished jobs; `nil` when no job finished.
    public var jobStatus: Int?
    /// Distinct ids requested.
    public var requested: Int
    /// Ids deleted.
    public var successful: Int
    /// Ids not deleted (in use, unknown, refused, or fate unknown after a timeout).
    public var failed: Int
    /// Which ids failed, when that could be determined; `nil` when unknown.
    public var failedUploadIDs: [UploadID]?
    /// `CODE: details` for rejected and timed-out operations, and for jobs that finished with a non-2xx
    /// status; `nil` otherwise.
    public var error: String?
    /// Bulk-destroy POSTs sent, retries and resubmissions included.
    public var attempts: Int
    /// Job-result GETs sent.
    public var polls: Int
    /// When the first bulk-destroy POST was sent; `nil` when none was (empty input).
    public var submittedAt: Date?
    /// When the outcome was decided.
    public var completedAt: Date

    /// Creates an outcome.
    public init(
        status: Status, jobIDs: [JobID], jobStatus: Int?, requested: Int, successful: Int, failed: Int,
        failedUploadIDs: [UploadID]?, error: String?, attempts: Int, polls: Int, submittedAt: Date?,
        completedAt: Date
    ) {
        self.status = status
        self.jobIDs = jobIDs
        self.jobStatus = jobStatus
        self.requested = requested
        self.successful = successful
        self.failed = failed
        self.failedUploadIDs = failedUploadIDs
        self.error = error
        self.attempts = attempts
        self.polls = polls
        self.submittedAt = submittedAt
        self.completedAt = completedAt
    }
}
