public import Kafka

/// An ``OffsetTracker`` for every partition this member consumes, addressed by ``SourcePosition``.
public struct PartitionOffsets: Sendable {
    private var trackers: [TopicPartition: OffsetTracker] = [:]

    /// Tracks nothing yet.
    public init() {}

    /// Tracks the message at `position`, just consumed; `false` for a redelivery (see ``OffsetTracker/track(offset:)``).
    public mutating func track(_ position: SourcePosition) -> Bool {
        trackers[position.topicPartition, default: OffsetTracker()].track(offset: position.offset)
    }

    /// Marks the message at `position` done; `false` when it is not tracked or already done.
    public mutating func markDone(_ position: SourcePosition) -> Bool {
        trackers[position.topicPartition]?.markDone(offset: position.offset) ?? false
    }

    /// For every partition with progress not yet stored, the offset to store.
    public var committable: [TopicPartition: Int64] {
        trackers.compactMapValues(\.committable)
    }

    /// Records that `offsets` were stored.
    public mutating func markCommitted(_ offsets: [TopicPartition: Int64]) {
        for (partition, offset) in offsets {
            trackers[partition]?.markCommitted(offset)
        }
    }

    /// Forgets what was stored for `partitions`, keeping what is tracked (see ``OffsetTracker/markUnstored()``).
    public mutating func markUnstored(_ partitions: Set<TopicPartition>) {
        for partition in partitions { trackers[partition]?.markUnstored() }
    }

    /// Forgets `partitions`, as after they were revoked.
    public mutating func revoke(_ partitions: Set<TopicPartition>) {
        for partition in partitions {
            trackers[partition] = nil
        }
    }

    /// The number of tracked messages not yet done in `partition`.
    public func outstanding(in partition: TopicPartition) -> Int {
        trackers[partition]?.outstanding ?? 0
    }

    /// The number of tracked messages not yet done, over all partitions.
    public var outstanding: Int {
        trackers.values.reduce(0) { $0 + $1.outstanding }
    }
}
