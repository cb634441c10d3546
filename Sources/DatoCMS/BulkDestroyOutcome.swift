#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// What happened to one bulk deletion, end to end: the value behind the contract's completion event.
///
/// Every requested id is in exactly one of three outcomes — `deleted + notFound + stillPresent == requested` — and
/// ``counts`` says whether the split is certain.
public struct BulkDestroyOutcome: Sendable, Equatable {
    /// The contract's `status`.
    public enum Status: String, Sendable {
        /// At least one job ran and the counts come from job results (and lookups on the lost-response path).
        case completed
        /// The API refused the whole operation with a non-retryable error; nothing was deleted.
        case rejected
        /// No job result within the job timeout, or the API stayed unavailable past the retry deadline;
        /// the ids whose fate is unknown are counted as still present and the request should be replayed.
        case timedOut = "timed_out"
    }

    /// Whether the three counts are certain (the contract's `counts`).
    public enum Counts: String, Sendable {
        /// Every count is known: `deleted` from the jobs' results, `stillPresent` named by a lookup, the rest absent
        /// before the operation ran.
        case exact
        /// Some ids' outcome is inferred: ids gone whose deletion cannot be attributed (a lost response, a failed
        /// job) are counted in `notFound`, so `deleted` is a lower bound and `deleted + notFound` an upper bound of
        /// what this operation deleted; ids whose state is unknown (no job result, or a lookup that failed) are
        /// counted in `stillPresent` without being named.
        case inferred
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
    /// Ids this operation's jobs deleted (their results' `meta.successful`).
    public var deleted: Int
    /// Ids absent without this operation's jobs having deleted them (already deleted, never existed); with
    /// ``Counts/inferred``, also ids gone whose deletion cannot be attributed.
    public var notFound: Int
    /// Ids not deleted: still there (in use, refused), or of unknown state with ``Counts/inferred``.
    public var stillPresent: Int
    /// Which ids are still present, when every one of them could be named; `nil` when some are of unknown state.
    public var stillPresentIDs: [UploadID]?
    /// Whether the counts are certain.
    public var counts: Counts
    /// Ids confirmed absent when the operation ended (deleted or not found): what may be remembered as gone.
    public var goneIDs: [UploadID]
    /// `CODE: details` for rejected and timed-out operations, and for jobs that finished with a non-2xx
    /// status; `nil` otherwise.
    public var error: String?
    /// Bulk-destroy POSTs sent, retries and resubmissions included.
    public var attempts: Int
    /// Job-result GETs sent.
    public var polls: Int
    /// `GET /uploads` requests sent to find out which ids still exist.
    public var lookups: Int
    /// When the first bulk-destroy POST was sent; `nil` when none was (empty input, or every id known gone).
    public var submittedAt: Date?
    /// When the outcome was decided.
    public var completedAt: Date

    /// Creates an outcome.
    public init(
        status: Status, jobIDs: [JobID], jobStatus: Int?, requested: Int, deleted: Int, notFound: Int,
        stillPresent: Int, stillPresentIDs: [UploadID]?, counts: Counts, goneIDs: [UploadID], error: String?,
        attempts: Int, polls: Int, lookups: Int, submittedAt: Date?, completedAt: Date
    ) {
        self.status = status
        self.jobIDs = jobIDs
        self.jobStatus = jobStatus
        self.requested = requested
        self.deleted = deleted
        self.notFound = notFound
        self.stillPresent = stillPresent
        self.stillPresentIDs = stillPresentIDs
        self.counts = counts
        self.goneIDs = goneIDs
        self.error = error
        self.attempts = attempts
        self.polls = polls
        self.lookups = lookups
        self.submittedAt = submittedAt
        self.completedAt = completedAt
    }
}
