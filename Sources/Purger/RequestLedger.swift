public import Kafka

/// Which accepted requests wait on which batches, so that an acknowledged completion event tells the worker which
/// requests are now fully done.
///
/// A request is done when every batch carrying one of its ids has had its completion event acknowledged
/// (CONTRACT §1.5). The ledger is pure bookkeeping; it never decides anything on its own.
public struct RequestLedger: Sendable {
    private var awaitedBatches: [SourcePosition: Set<BatchID>] = [:]
    private var waitingRequests: [BatchID: Set<SourcePosition>] = [:]

    /// An empty ledger.
    public init() {}

    /// Records that the request at `request` is done once all of `batches` are acknowledged.
    ///
    /// Returns `true` when `batches` is empty, meaning the request is done now and nothing is recorded. Recording
    /// the same request again adds to the batches it waits on.
    public mutating func record(_ request: SourcePosition, waitingOn batches: Set<BatchID>) -> Bool {
        guard !batches.isEmpty else { return awaitedBatches[request] == nil }
        awaitedBatches[request, default: []].formUnion(batches)
        for batch in batches {
            waitingRequests[batch, default: []].insert(request)
        }
        return false
    }

    /// Records that the completion event of `batch` is acknowledged and returns the requests that waited on nothing
    /// else, ordered by topic, partition and offset; they are now done.
    ///
    /// An unknown batch returns no requests.
    public mutating func batchAcknowledged(_ batch: BatchID) -> [SourcePosition] {
        guard let requests = waitingRequests.removeValue(forKey: batch) else { return [] }
        var done: [SourcePosition] = []
        for request in requests {
            awaitedBatches[request]?.remove(batch)
            if awaitedBatches[request]?.isEmpty == true {
                awaitedBatches[request] = nil
                done.append(request)
            }
        }
        return done.sorted()
    }

    /// Forgets every request from `partitions` (they were revoked: their offsets can no longer be stored by this
    /// member). Batches keep running; acknowledging them no longer reports those requests.
    public mutating func forget(partitions: Set<TopicPartition>) {
        let forgotten = awaitedBatches.keys.filter { partitions.contains($0.topicPartition) }
        for request in forgotten {
            for batch in awaitedBatches.removeValue(forKey: request) ?? [] {
                waitingRequests[batch]?.remove(request)
                if waitingRequests[batch]?.isEmpty == true { waitingRequests[batch] = nil }
            }
        }
    }

    /// The batches `request` still waits on; empty when it waits on nothing (done or unknown).
    public func batches(awaitedBy request: SourcePosition) -> Set<BatchID> {
        awaitedBatches[request] ?? []
    }

    /// The requests still waiting on `batch`.
    public func requests(waitingOn batch: BatchID) -> Set<SourcePosition> {
        waitingRequests[batch] ?? []
    }

    /// The number of requests waiting on at least one batch.
    public var waitingCount: Int { awaitedBatches.count }
}
