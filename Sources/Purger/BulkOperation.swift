public import DatoCMS
public import Foundation

/// One batch of upload ids to delete with a single `POST /uploads/bulk/destroy` in one environment.
///
/// Made by ``Batcher``: ``uploadIDs`` is never empty, holds at most the batcher's maximum size, and has no
/// duplicates.
public struct BulkOperation: Hashable, Sendable {
    /// The batch's identity; the key of its completion event.
    public let batchID: BatchID
    /// The DatoCMS environment to delete in (`X-Environment`), or `nil` for the primary environment.
    public let environment: String?
    /// The distinct ids to delete, in the order they were enqueued.
    public let uploadIDs: [UploadID]
    /// The requests that contributed ids up to the moment the batch was flushed, in arrival order.
    ///
    /// Requests can still join the batch while it is in flight; ``Batcher/completed(_:)`` returns the full list.
    public let requests: [RequestRef]
    /// When the batch's first id was enqueued, on the monotonic clock that drives the maximum wait.
    public let firstEnqueuedAt: ContinuousClock.Instant
    /// When the batch's first id was enqueued, as wall time for the completion event.
    public let firstEnqueuedWallTime: Date

    /// Assembles an operation; ``Batcher`` is the usual maker.
    public init(
        batchID: BatchID,
        environment: String?,
        uploadIDs: [UploadID],
        requests: [RequestRef],
        firstEnqueuedAt: ContinuousClock.Instant,
        firstEnqueuedWallTime: Date
    ) {
        self.batchID = batchID
        self.environment = environment
        self.uploadIDs = uploadIDs
        self.requests = requests
        self.firstEnqueuedAt = firstEnqueuedAt
        self.firstEnqueuedWallTime = firstEnqueuedWallTime
    }
}
