import DatoCMS
public import Foundation

/// Merges the upload ids of deletion requests into bulk operations: one pending batch per DatoCMS environment,
/// flushed when it holds ``maxSize`` ids or when its oldest id has waited ``maxWait``.
///
/// The batcher is pure: time comes in as arguments, and every decision comes back as a return value. It
/// guarantees that
/// - an id is never pending twice, nor pending while it is in flight, in the same environment: a request whose id
///   is already pending or in flight joins the batch that carries it instead (CONTRACT §3, "ids already pending or
///   in flight are not submitted twice");
/// - every returned ``BulkOperation`` holds 1 to ``maxSize`` distinct ids of one environment;
/// - every request is listed by every batch that carries one of its ids, including batches it joined while they
///   were in flight (see ``completed(_:)``), and ``AddResult/dependsOn`` names exactly those batches;
/// - at most ``maxSize`` ids are pending per environment.
///
/// On shutdown or partition revocation call ``flushAll()``: pending work is submitted rather than dropped, which
/// keeps the bookkeeping simple and at worst repeats deletions the next owner of a revoked partition also makes.
public struct Batcher: Sendable {
    /// What adding one request did.
    public struct AddResult: Hashable, Sendable {
        /// Batches that became full and must be submitted now, oldest first.
        public var flushed: [BulkOperation]
        /// Every batch (pending, just flushed, or in flight) carrying at least one of the request's ids; the
        /// request is done when all of them are.
        public var dependsOn: Set<BatchID>
    }

    /// The most ids a batch holds (1 to 200).
    public let maxSize: Int
    /// The longest an id waits in a pending batch before the batch is flushed anyway.
    public let maxWait: Duration
    /// The environment of requests that name none; `nil` means the primary environment.
    public let defaultEnvironment: String?

    private var pending: [String?: PendingBatch] = [:]
    private var inFlight: [BatchID: InFlightBatch] = [:]
    private var inFlightByUpload: [String?: [UploadID: BatchID]] = [:]

    /// A batcher with no pending or in-flight batches.
    ///
    /// - Precondition: `maxSize` is from 1 to 200 and `maxWait` is not negative.
    public init(maxSize: Int, maxWait: Duration, defaultEnvironment: String? = nil) {
        precondition((1...200).contains(maxSize), "batch max size must be from 1 to 200")
        precondition(maxWait >= .zero, "batch max wait must not be negative")
        self.maxSize = maxSize
        self.maxWait = maxWait
        self.defaultEnvironment = defaultEnvironment
    }

    // MARK: - Adding

    /// Adds the ids of `request` to the pending batch of its environment, joining pending or in-flight batches for
    /// ids they already carry, and returns the batches that became full.
    ///
    /// `now` and `wallNow` are the current monotonic and wall time; they become a new batch's first-enqueued time.
    public mutating func add(
        _ request: DeletionRequest,
        now: ContinuousClock.Instant,
        wallNow: Date
    ) -> AddResult {
        let environment = request.environment ?? defaultEnvironment
        let ref = request.ref
        var flushed: [BulkOperation] = []
        var dependsOn = Set<BatchID>()
        // The environment's pending batch and in-flight index are looked up once per request, not per id, and the
        // batch is taken out of the dictionary so that appending to it never copies it.
        var carriers = inFlightByUpload[environment]
        var batch = pending.removeValue(forKey: environment)
        for id in request.uploadIDs {
            if let carrier = carriers?[id] {
                inFlight[carrier]!.attach(ref)
                dependsOn.insert(carrier)
            } else if batch?.carries(id) == true {
                batch!.attach(ref)
                dependsOn.insert(batch!.id)
            } else {
                if batch == nil { batch = PendingBatch(firstEnqueuedAt: now, firstEnqueuedWallTime: wallNow) }
                batch!.append(id, from: ref)
                dependsOn.insert(batch!.id)
                if batch!.uploadIDs.count == maxSize {
                    carriers = nil  // one owner of the index, so that the flight adds to it in place
                    flushed.append(startFlight(batch!, environment: environment))
                    batch = nil
                    carriers = inFlightByUpload[environment]
                }
            }
        }
        if let batch { pending[environment] = batch }
        return AddResult(flushed: flushed, dependsOn: dependsOn)
    }

    // MARK: - Flushing

    /// Flushes every pending batch whose first id was enqueued at least ``maxWait`` before `now`, oldest first.
    public mutating func flushDue(now: ContinuousClock.Instant) -> [BulkOperation] {
        let due = pending.filter { now >= $0.value.firstEnqueuedAt.advanced(by: maxWait) }
        return flush(environments: due.map(\.key))
    }

    /// Flushes every pending batch regardless of age, oldest first: for shutdown and partition revocation.
    public mutating func flushAll() -> [BulkOperation] {
        flush(environments: Array(pending.keys))
    }

    /// The earliest instant at which ``flushDue(now:)`` will flush something, or `nil` when nothing is pending.
    public func nextDeadline() -> ContinuousClock.Instant? {
        pending.values.map { $0.firstEnqueuedAt.advanced(by: maxWait) }.min()
    }

    // MARK: - Completion

    /// Records that batch `batch` is finished (its outcome is known), so its ids may be submitted again by later
    /// requests, and returns every request that contributed ids to it, including those that joined it in flight,
    /// in arrival order.
    ///
    /// Returns `nil` when `batch` is not in flight (unknown, still pending, or already completed).
    public mutating func completed(_ batch: BatchID) -> [RequestRef]? {
        guard let finished = inFlight.removeValue(forKey: batch) else { return nil }
        if var carriers = inFlightByUpload.removeValue(forKey: finished.environment) {
            for id in finished.uploadIDs where carriers[id] == batch { carriers[id] = nil }
            if !carriers.isEmpty { inFlightByUpload[finished.environment] = carriers }
        }
        return finished.requests
    }

    // MARK: - Queries

    /// The requests that contributed ids to `batch` so far, whether it is pending or in flight; `nil` when unknown.
    public func requests(of batch: BatchID) -> [RequestRef]? {
        if let inFlight = inFlight[batch] { return inFlight.requests }
        return pending.values.first { $0.id == batch }?.requests
    }

    /// The pending batch of `environment` (`nil` = primary), if it has any ids.
    public func pendingBatch(for environment: String?) -> BatchID? {
        pending[environment]?.id
    }

    /// The number of ids waiting in pending batches, across all environments; at most ``maxSize`` per environment.
    public var pendingCount: Int {
        pending.values.reduce(0) { $0 + $1.uploadIDs.count }
    }

    /// The number of flushed batches not yet ``completed(_:)``.
    public var inFlightCount: Int { inFlight.count }

    /// Whether no batch is pending or in flight.
    public var isIdle: Bool { pending.isEmpty && inFlight.isEmpty }

    // MARK: - Private

    private mutating func flush(environments: [String?]) -> [BulkOperation] {
        environments
            .sorted { pending[$0]!.firstEnqueuedAt < pending[$1]!.firstEnqueuedAt }
            .map { flush($0) }
    }

    private mutating func flush(_ environment: String?) -> BulkOperation {
        startFlight(pending.removeValue(forKey: environment)!, environment: environment)
    }

    private mutating func startFlight(_ batch: PendingBatch, environment: String?) -> BulkOperation {
        inFlight[batch.id] = InFlightBatch(
            environment: environment,
            uploadIDs: batch.uploadIDs,
            requests: batch.requests,
            requestSources: batch.requestSources
        )
        var carriers = inFlightByUpload.removeValue(forKey: environment) ?? [:]
        for id in batch.uploadIDs { carriers[id] = batch.id }
        inFlightByUpload[environment] = carriers
        return BulkOperation(
            batchID: batch.id,
            environment: environment,
            uploadIDs: batch.uploadIDs,
            requests: batch.requests,
            firstEnqueuedAt: batch.firstEnqueuedAt,
            firstEnqueuedWallTime: batch.firstEnqueuedWallTime
        )
    }

    private struct PendingBatch: Sendable {
        let id = BatchID()
        let firstEnqueuedAt: ContinuousClock.Instant
        let firstEnqueuedWallTime: Date
        private(set) var uploadIDs: [UploadID] = []
        private var idSet = Set<UploadID>()
        private(set) var requests: [RequestRef] = []
        private(set) var requestSources = Set<SourcePosition>()

        init(firstEnqueuedAt: ContinuousClock.Instant, firstEnqueuedWallTime: Date) {
            self.firstEnqueuedAt = firstEnqueuedAt
            self.firstEnqueuedWallTime = firstEnqueuedWallTime
        }

        func carries(_ id: UploadID) -> Bool { idSet.contains(id) }

        mutating func append(_ id: UploadID, from ref: RequestRef) {
            uploadIDs.append(id)
            idSet.insert(id)
            attach(ref)
        }

        mutating func attach(_ ref: RequestRef) {
            if requestSources.insert(ref.source).inserted { requests.append(ref) }
        }
    }

    private struct InFlightBatch: Sendable {
        let environment: String?
        let uploadIDs: [UploadID]
        var requests: [RequestRef]
        var requestSources: Set<SourcePosition>

        mutating func attach(_ ref: RequestRef) {
            if requestSources.insert(ref.source).inserted { requests.append(ref) }
        }
    }
}
