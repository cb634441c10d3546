import DatoCMS
public import Foundation
public import Kafka

/// Everything the worker knows about work in progress, as one value: the batcher, which requests wait on
/// which batches, the per-partition offset trackers, the operations in flight and the raw requests kept for
/// replay. Every method is pure bookkeeping; the worker does the I/O around it under one lock.
public struct PipelineState: Sendable {
    /// A consumed message after decoding: what the worker must do next.
    public enum Accepted: Sendable {
        /// Valid: these operations became full and must be submitted (possibly none).
        case batched([BulkOperation])
        /// Invalid: send the message to the dead-letter topic with this reason.
        case deadLetter(DeadLetter)
        /// Already tracked (a redelivery of a message still in progress): nothing to do.
        case duplicate
    }

    private(set) var batcher: Batcher
    private var ledger = RequestLedger()
    private var offsets = PartitionOffsets()
    private var inFlight: [BatchID: BulkOperation] = [:]
    private var held: [SourcePosition: HeldRequest] = [:]
    /// The partitions this member owns now.
    public private(set) var assigned: Set<TopicPartition> = []
    /// The partitions this member has paused for backpressure.
    public private(set) var paused: Set<TopicPartition> = []

    /// Starts empty, batching as `batcher` is configured.
    public init(batcher: Batcher) {
        self.batcher = batcher
    }

    // MARK: - Consuming

    /// Takes a consumed message: tracks its offset, decodes it and batches its ids.
    public mutating func accept(
        _ message: KafkaMessage, now: ContinuousClock.Instant, wallNow: Date
    ) -> Accepted {
        let source = SourcePosition(
            topic: message.topicPartition.topic, partition: message.topicPartition.partition, offset: message.offset)
        guard offsets.track(source) else { return .duplicate }
        switch DeletionRequest.decode(value: message.value, source: source) {
        case .failure(let invalid):
            return .deadLetter(DeadLetter(invalid, source: source))
        case .success(let request):
            let result = batcher.add(request, now: now, wallNow: wallNow)
            held[source] = HeldRequest(message: message, requestedAt: request.requestedAt)
            if ledger.record(source, waitingOn: result.dependsOn) {
                held[source] = nil
                _ = offsets.markDone(source)
            }
            return .batched(started(result.flushed))
        }
    }

    /// Batches whose oldest id has waited long enough, now in flight.
    public mutating func flushDue(now: ContinuousClock.Instant) -> [BulkOperation] {
        started(batcher.flushDue(now: now))
    }

    /// Every pending batch, now in flight (shutdown, revocation).
    public mutating func flushAll() -> [BulkOperation] {
        started(batcher.flushAll())
    }

    /// When the next pending batch becomes due.
    public var nextDeadline: ContinuousClock.Instant? { batcher.nextDeadline() }

    private mutating func started(_ operations: [BulkOperation]) -> [BulkOperation] {
        for operation in operations { inFlight[operation.batchID] = operation }
        return operations
    }

    // MARK: - Finishing

    /// Closes `batch` to joiners now that its outcome is known (later requests for its ids start a new batch)
    /// and returns the requests that contributed to it, including those that joined while it ran, with the
    /// messages still held for them, for its completion event and for replay.
    public mutating func finish(_ batch: BatchID) -> (requests: [RequestRef], held: [HeldRequest]) {
        let requests = batcher.completed(batch) ?? []
        return (requests, requests.compactMap { held[$0.source] })
    }

    /// Records that `batch`'s completion event was acknowledged; returns the offsets that may now be stored.
    public mutating func batchAcknowledged(_ batch: BatchID) -> [TopicPartition: Int64] {
        inFlight[batch] = nil
        for source in ledger.batchAcknowledged(batch) {
            held[source] = nil
            _ = offsets.markDone(source)
        }
        return offsets.committable
    }

    /// Records that `batch` ended without an acknowledged event (the worker is stopping on a fatal error):
    /// its ids may be submitted again, and its requests stay unfinished.
    public mutating func batchAbandoned(_ batch: BatchID) {
        inFlight[batch] = nil
        _ = batcher.completed(batch)
    }

    /// Records that the dead letter for `source` was acknowledged; returns the offsets that may now be stored.
    public mutating func deadLetterAcknowledged(_ source: SourcePosition) -> [TopicPartition: Int64] {
        _ = offsets.markDone(source)
        return offsets.committable
    }

    /// Records that `stored` offsets were handed to the consumer.
    public mutating func offsetsStored(_ stored: [TopicPartition: Int64]) {
        offsets.markCommitted(stored)
    }

    // MARK: - Assignment and backpressure

    /// Submitted operations whose completion event is not acknowledged yet.
    public var inFlightCount: Int { inFlight.count }

    /// Ids waiting in pending batches.
    public var pendingCount: Int { batcher.pendingCount }

    /// Messages consumed but not yet done, in `partitions`.
    public func outstanding(in partitions: Set<TopicPartition>) -> Int {
        partitions.reduce(0) { $0 + offsets.outstanding(in: $1) }
    }

    /// Messages consumed but not yet done, everywhere.
    public var outstanding: Int { offsets.outstanding }

    /// Offsets ready to store in `partitions`.
    public func committable(in partitions: Set<TopicPartition>) -> [TopicPartition: Int64] {
        offsets.committable.filter { partitions.contains($0.key) }
    }

    /// Starts owning `partitions`, with no history.
    public mutating func assign(_ partitions: [TopicPartition]) {
        assigned.formUnion(partitions)
        offsets.revoke(Set(partitions))
    }

    /// Stops owning `partitions`: their requests are forgotten (batches carrying them still finish and publish
    /// their events, but no longer move these partitions' offsets).
    public mutating func revoke(_ partitions: Set<TopicPartition>) {
        assigned.subtract(partitions)
        paused.subtract(partitions)
        offsets.revoke(partitions)
        ledger.forget(partitions: partitions)
        for source in held.keys where partitions.contains(source.topicPartition) { held[source] = nil }
    }

    /// Which partitions to pause and resume so that fetching stops at `maxInFlight` jobs and restarts below.
    public mutating func backpressure(maxInFlight: Int) -> (pause: Set<TopicPartition>, resume: Set<TopicPartition>) {
        if inFlight.count >= maxInFlight {
            let toPause = assigned.subtracting(paused)
            paused.formUnion(toPause)
            return (toPause, [])
        }
        let toResume = paused
        paused = []
        return ([], toResume)
    }
}

/// A valid request whose ids are not all reported yet: its original message (for replay after a job timeout)
/// and its requested time (for end-to-end latency).
public struct HeldRequest: Sendable {
    /// The message as consumed.
    public var message: KafkaMessage
    /// The request's `requested_at`, if it had one.
    public var requestedAt: Date?
}
