public import Kafka

/// Where a Kafka message came from: its topic, partition and offset.
///
/// A `SourcePosition` names one consumed message exactly; it is what offsets are tracked by and what
/// dead letters and completion events refer back to. It encodes as `{"topic", "partition", "offset"}`.
public struct SourcePosition: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The topic the message was consumed from.
    public var topic: String
    /// The partition of `topic` the message was consumed from.
    public var partition: Int32
    /// The message's offset within its partition.
    public var offset: Int64

    /// Names the message at `offset` in `partition` of `topic`.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    /// The partition the message belongs to.
    public var topicPartition: TopicPartition {
        TopicPartition(topic: topic, partition: partition)
    }

    /// `<topic>/<partition>/<offset>`, the form used as the default request id.
    public var description: String { "\(topic)/\(partition)/\(offset)" }

    /// Orders by topic, then partition, then offset.
    public static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool {
        (lhs.topic, lhs.partition, lhs.offset) < (rhs.topic, rhs.partition, rhs.offset)
    }
}
