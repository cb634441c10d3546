public import DatoCMS
public import Foundation

/// The outcome of one bulk operation, published to the results topic with key `batch_id` (CONTRACT §3).
///
/// A value of this type is always consistent: ``requested`` is the number of distinct ``uploadIDs``,
/// `successful + failed == requested`, a rejected operation has no successes, and ``failedUploadIDs``, when known,
/// names exactly ``failed`` of the submitted ids. ``jsonBytes()`` writes every contract field, with explicit
/// `null`s.
public struct CompletionEvent: Encodable, Hashable, Sendable {
    /// The value of the `schema` field.
    public static let schema = "upload-deletion-result/v1"

    /// How the operation ended.
    public enum Status: String, Hashable, Sendable, CaseIterable {
        /// The job ran; the counts come from its result.
        case completed
        /// The API refused the operation with a non-retryable error; ``CompletionEvent/error`` says why.
        case rejected
        /// No job result came within the job timeout; the requests are also dead-lettered for replay.
        case timedOut = "timed_out"
    }

    /// The batch; also the event's key.
    public let batchID: BatchID
    /// The environment the ids were deleted in; `nil` for the primary environment (written as `null`).
    public let environment: String?
    /// How the operation ended.
    public let status: Status
    /// The DatoCMS job id, when the operation was accepted.
    public let jobID: String?
    /// The HTTP status of the job result, when one came.
    public let jobStatus: Int?
    /// How many of ``uploadIDs`` were deleted.
    public let successful: Int
    /// How many of ``uploadIDs`` were not deleted.
    public let failed: Int
    /// Which ids failed, when the worker could tell; `nil` when unknown.
    public let failedUploadIDs: [UploadID]?
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
    /// When the batch's first id was enqueued.
    public let firstEnqueuedAt: Date
    /// When the bulk destroy was accepted, if it was.
    public let submittedAt: Date?
    /// When the outcome became known.
    public let completedAt: Date

    /// The number of distinct ids submitted: `successful + failed`.
    public var requested: Int { uploadIDs.count }

    /// An event from its parts, refusing inconsistent counts.
    ///
    /// - Throws: ``CompletionEventError`` when `uploadIDs` is empty or has duplicates, a count or `attempts` or
    ///   `polls` is negative, `successful + failed` differs from the number of ids, a rejected operation reports
    ///   successes, or `failedUploadIDs` is given but does not name exactly `failed` distinct submitted ids.
    public init(
        batchID: BatchID,
        environment: String?,
        status: Status,
        jobID: String?,
        jobStatus: Int?,
        successful: Int,
        failed: Int,
        failedUploadIDs: [UploadID]?,
        uploadIDs: [UploadID],
        requests: [RequestRef],
        error: String?,
        attempts: Int,
        polls: Int,
        firstEnqueuedAt: Date,
        submittedAt: Date?,
        completedAt: Date
    ) throws(CompletionEventError) {
        let distinct = Set(uploadIDs)
        guard !uploadIDs.isEmpty, distinct.count == uploadIDs.count else {
            throw CompletionEventError("upload ids must be distinct and not empty")
        }
        guard successful >= 0, failed >= 0, attempts >= 0, polls >= 0 else {
            throw CompletionEventError("counts must not be negative")
        }
        guard successful + failed == uploadIDs.count else {
            throw CompletionEventError(
                "successful (\(successful)) + failed (\(failed)) must equal requested (\(uploadIDs.count))"
            )
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
        }
        self.batchID = batchID
        self.environment = environment
        self.status = status
        self.jobID = jobID
        self.jobStatus = jobStatus
        self.successful = successful
        self.failed = failed
        self.failedUploadIDs = failedUploadIDs
        self.uploadIDs = uploadIDs
        self.requests = requests
        self.error = error
        self.attempts = attempts
        self.polls = polls
        self.firstEnqueuedAt = firstEnqueuedAt
        self.submittedAt = submittedAt
        self.completedAt = completedAt
    }

    /// An event for `operation`, taking its id, environment, ids and first-enqueued time; `requests` should be the
    /// full list from ``Batcher/completed(_:)``.
    public init(
        operation: BulkOperation,
        requests: [RequestRef],
        status: Status,
        jobID: String?,
        jobStatus: Int?,
        successful: Int,
        failed: Int,
        failedUploadIDs: [UploadID]?,
        error: String?,
        attempts: Int,
        polls: Int,
        submittedAt: Date?,
        completedAt: Date
    ) throws(CompletionEventError) {
        try self.init(
            batchID: operation.batchID,
            environment: operation.environment,
            status: status,
            jobID: jobID,
            jobStatus: jobStatus,
            successful: successful,
            failed: failed,
            failedUploadIDs: failedUploadIDs,
            uploadIDs: operation.uploadIDs,
            requests: requests,
            error: error,
            attempts: attempts,
            polls: polls,
            firstEnqueuedAt: operation.firstEnqueuedWallTime,
            submittedAt: submittedAt,
            completedAt: completedAt
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
            JSONMember("job_status", jobStatus.map(JSONValue.integer) ?? .null),
            JSONMember("requested", .integer(requested)),
            JSONMember("successful", .integer(successful)),
            JSONMember("failed", .integer(failed)),
            JSONMember("failed_upload_ids", failedUploadIDs.map { .array($0.map { .string($0.rawValue) }) } ?? .null),
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
