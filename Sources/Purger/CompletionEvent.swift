public import DatoCMS
public import Foundation

/// The outcome of one bulk operation, published to the results topic with key `batch_id` (CONTRACT §3).
///
/// A value of this type is always consistent: ``requested`` is the number of distinct ``uploadIDs``, every id is in
/// exactly one outcome (`successful + notFound + failed == requested`), a rejected operation has no successes,
/// ``failedUploadIDs``, when known, names exactly ``failed`` of the submitted ids, and exact counts name them.
/// ``jsonBytes()`` writes every contract field, with explicit `null`s.
public struct CompletionEvent: Encodable, Hashable, Sendable {
    /// The value of the `schema` field.
    public static let schema = "upload-deletion-result/v2"

    /// How the operation ended.
    public enum Status: String, Hashable, Sendable, CaseIterable {
        /// The job ran; the counts come from its result.
        case completed
        /// The API refused the operation with a non-retryable error; ``CompletionEvent/error`` says why.
        case rejected
        /// No job result came within the job timeout; the requests are also dead-lettered for replay.
        case timedOut = "timed_out"
    }

    /// Whether the three counts are certain (CONTRACT §3, `counts`).
    public enum Counts: String, Hashable, Sendable, CaseIterable {
        /// Certain: `successful` from the job results, `failed` named by a lookup, the rest absent beforehand.
        case exact
        /// Some ids' outcome is inferred: see ``BulkDestroyOutcome/Counts/inferred``.
        case inferred
    }

    /// The batch; also the event's key.
    public let batchID: BatchID
    /// The environment the ids were deleted in; `nil` for the primary environment (written as `null`).
    public let environment: String?
    /// How the operation ended.
    public let status: Status
    /// Every DatoCMS job started for the operation, in order; the first is also `job_id`.
    public let jobIDs: [String]
    /// The HTTP status of the job result, when one came.
    public let jobStatus: Int?
    /// How many of ``uploadIDs`` this operation deleted.
    public let successful: Int
    /// How many of ``uploadIDs`` were already absent (with inferred counts, also those gone whose deletion cannot be
    /// attributed).
    public let notFound: Int
    /// How many of ``uploadIDs`` are still present (with inferred counts, also those whose state is unknown).
    public let failed: Int
    /// Which ids are still present, when every one could be named; `nil` when some are of unknown state.
    public let failedUploadIDs: [UploadID]?
    /// Whether the counts are certain.
    public let counts: Counts
    /// The distinct ids submitted.
    public let uploadIDs: [UploadID]
    /// Every request that contributed ids to the batch.
    public let requests: [RequestRef]
    /// Why the operation was rejected or timed out; `nil` when it completed.
    public let error: String?
    /// How many times the bulk destroy was sent (retries included).
    public let attempts: Int
    /// How many times the job result was polled.
    public let polls: Int
    /// How many `GET /uploads` lookups found out which ids still exist.
    public let lookups: Int
    /// When the batch's first id was enqueued.
    public let firstEnqueuedAt: Date
    /// When the bulk destroy was accepted, if it was.
    public let submittedAt: Date?
    /// When the outcome became known.
    public let completedAt: Date

    /// The first DatoCMS job id, when the operation was accepted.
    public var jobID: String? { jobIDs.first }
    /// The number of distinct ids submitted: `successful + notFound + failed`.
    public var requested: Int { uploadIDs.count }

    /// An event from its parts, refusing inconsistent counts.
    ///
    /// - Throws: ``CompletionEventError`` when `uploadIDs` is empty or has duplicates, a count or `attempts`,
    ///   `polls` or `lookups` is negative, `successful + notFound + failed` differs from the number of ids, a
    ///   rejected operation reports successes, `failedUploadIDs` is given but does not name exactly `failed`
    ///   distinct submitted ids, or exact counts do not name the failed ids.
    public init(
        batchID: BatchID,
        environment: String?,
        status: Status,
        jobIDs: [String],
        jobStatus: Int?,
        successful: Int,
        notFound: Int,
        failed: Int,
        failedUploadIDs: [UploadID]?,
        counts: Counts,
        uploadIDs: [UploadID],
        requests: [RequestRef],
        error: String?,
        attempts: Int,
        polls: Int,
        lookups: Int,
        firstEnqueuedAt: Date,
        submittedAt: Date?,
        completedAt: Date
    ) throws(CompletionEventError) {
        let distinct = Set(uploadIDs)
        guard !uploadIDs.isEmpty, distinct.count == uploadIDs.count else {
            throw CompletionEventError("upload ids must be distinct and not empty")
        }
        guard successful >= 0, notFound >= 0, failed >= 0, attempts >= 0, polls >= 0, lookups >= 0 else {
            throw CompletionEventError("counts must not be negative")
        }
        guard successful + notFound + failed == uploadIDs.count else {
            throw CompletionEventError(
                "successful (\(successful)) + not_found (\(notFound)) + failed (\(failed)) must equal requested "
                    + "(\(uploadIDs.count))")
        }
        guard status != .rejected || successful == 0 else {
            throw CompletionEventError("a rejected operation has no successful deletions")
        }
        if let failedUploadIDs {
            guard failedUploadIDs.count == failed, Set(failedUploadIDs).count == failed,
                distinct.isSuperset(of: failedUploadIDs)
            else {
                throw CompletionEventError("failed upload ids must name exactly \(failed) distinct submitted ids")
            }
        } else if counts == .exact {
            throw CompletionEventError("exact counts name the failed upload ids")
        }
        self.batchID = batchID
        self.environment = environment
        self.status = status
        self.jobIDs = jobIDs
        self.jobStatus = jobStatus
        self.successful = successful
        self.notFound = notFound
        self.failed = failed
        self.failedUploadIDs = failedUploadIDs
        self.counts = counts
        self.uploadIDs = uploadIDs
        self.requests = requests
        self.error = error
        self.attempts = attempts
        self.polls = polls
        self.lookups = lookups
        self.firstEnqueuedAt = firstEnqueuedAt
        self.submittedAt = submittedAt
        self.completedAt = completedAt
    }

    /// The event for `operation` and its `outcome`, taking the operation's id, environment, ids and first-enqueued
    /// time; `requests` should be the full list from ``Batcher/completed(_:)``.
    public init(
        operation: BulkOperation, requests: [RequestRef], outcome: BulkDestroyOutcome
    ) throws(CompletionEventError) {
        try self.init(
            batchID: operation.batchID,
            environment: operation.environment,
            status: Status(outcome.status),
            jobIDs: outcome.jobIDs.map(\.rawValue),
            jobStatus: outcome.jobStatus,
            successful: outcome.deleted,
            notFound: outcome.notFound,
            failed: outcome.stillPresent,
            failedUploadIDs: outcome.stillPresentIDs,
            counts: outcome.counts == .exact ? .exact : .inferred,
            uploadIDs: operation.uploadIDs,
            requests: requests,
            error: outcome.error,
            attempts: outcome.attempts,
            polls: outcome.polls,
            lookups: outcome.lookups,
            firstEnqueuedAt: operation.firstEnqueuedWallTime,
            submittedAt: outcome.submittedAt,
            completedAt: outcome.completedAt
        )
    }

    // MARK: - Encoding

    /// The event as a JSON object with the contract's fields in the contract's order; absent values are `null`.
    var json: JSONValue {
        .object([
            JSONMember("schema", .string(Self.schema)),
            JSONMember("batch_id", .string(batchID.description)),
            JSONMember("environment", .stringOrNull(environment)),
            JSONMember("status", .string(status.rawValue)),
            JSONMember("job_id", .stringOrNull(jobID)),
            JSONMember("job_ids", .array(jobIDs.map(JSONValue.string))),
            JSONMember("job_status", jobStatus.map(JSONValue.integer) ?? .null),
            JSONMember("requested", .integer(requested)),
            JSONMember("successful", .integer(successful)),
            JSONMember("not_found", .integer(notFound)),
            JSONMember("failed", .integer(failed)),
            JSONMember("failed_upload_ids", failedUploadIDs.map { .array($0.map { .string($0.rawValue) }) } ?? .null),
            JSONMember("counts", .string(counts.rawValue)),
            JSONMember("upload_ids", .array(uploadIDs.map { .string($0.rawValue) })),
            JSONMember(
                "requests",
                .array(
                    requests.map { request in
                        .object([
                            JSONMember("request_id", .string(request.requestID)),
                            JSONMember("topic", .string(request.source.topic)),
                            JSONMember("partition", .integer(request.source.partition)),
                            JSONMember("offset", .integer(request.source.offset)),
                        ])
                    }
                )
            ),
            JSONMember("error", .stringOrNull(error)),
            JSONMember("attempts", .integer(attempts)),
            JSONMember("polls", .integer(polls)),
            JSONMember("lookups", .integer(lookups)),
            JSONMember("first_enqueued_at", .string(RFC3339.format(firstEnqueuedAt))),
            JSONMember("submitted_at", .stringOrNull(submittedAt.map(RFC3339.format))),
            JSONMember("completed_at", .string(RFC3339.format(completedAt))),
        ])
    }

    /// Encodes the same object as ``jsonBytes()``, explicit `null`s included (key order is up to the encoder).
    public func encode(to encoder: any Encoder) throws {
        try json.encode(to: encoder)
    }

    /// The event as compact UTF-8 JSON, fields in contract order: the results topic's message value.
    public func jsonBytes() -> [UInt8] {
        var output: [UInt8] = []
        json.write(to: &output)
        return output
    }
}

/// Why a ``CompletionEvent`` could not be made: its parts contradict each other.
public struct CompletionEventError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is inconsistent.
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
