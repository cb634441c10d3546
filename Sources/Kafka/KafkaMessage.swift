public import Foundation

/// One record header: a name and a value of raw bytes.
public struct KafkaHeader: Hashable, Sendable {
    /// The header's name.
    public var name: String
    /// The header's value, or `nil` for a header without value.
    public var value: [UInt8]?

    /// Makes a header with a binary value.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// Makes a header whose value is the UTF-8 encoding of `text`.
    public init(name: String, text: String) {
        self.init(name: name, value: Array(text.utf8))
    }
}

/// A message as consumed: where it came from, its key, value, headers and timestamp, copied out of librdkafka.
public struct KafkaMessage: Sendable, Hashable {
    /// The partition the message was read from.
    public var topicPartition: TopicPartition
    /// The message's offset in its partition.
    public var offset: Int64
    /// The key, or `nil` when the message has none.
    public var key: [UInt8]?
    /// The value, or `nil` for a tombstone.
    public var value: [UInt8]?
    /// The headers in the order they were written.
    public var headers: [KafkaHeader]
    /// The producer's or broker's timestamp, when the message carries one.
    public var timestamp: Date?

    /// Makes a message (tests and replays build these; the consumer fills them from librdkafka).
    public init(
        topicPartition: TopicPartition, offset: Int64, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader],
        timestamp: Date?
    ) {
        self.topicPartition = topicPartition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// A message to produce.
public struct KafkaRecord: Sendable, Hashable {
    /// The destination topic.
    public var topic: String
    /// The destination partition, or `nil` to let the partitioner choose from the key.
    public var partition: Int32?
    /// The key, or `nil`.
    public var key: [UInt8]?
    /// The value, or `nil` for a tombstone.
    public var value: [UInt8]?
    /// The headers, in order.
    public var headers: [KafkaHeader]

    /// Makes a record for `topic`.
    public init(
        topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Where the broker stored a produced message.
public struct DeliveryReport: Sendable, Hashable {
    /// The partition the message went to.
    public var topicPartition: TopicPartition
    /// The offset the broker gave it.
    public var offset: Int64
}

/// A change of the consumer's assignment, as ``KafkaConsumer/pollEvents(maxMessages:timeout:)`` returns it.
public enum RebalanceEvent: Sendable, Hashable {
    /// These partitions were added to the assignment; consumption starts at their committed offsets.
    case assigned([TopicPartition])
    /// These partitions are being taken away. Unless `lost`, a consumer that completes revocations itself keeps
    /// them assigned until ``KafkaConsumer/completeRevocation(_:)``, so offsets for them can still be stored and
    /// committed. `lost` means the group already gave them to another member (session timed out): they are
    /// unassigned already, committing is pointless and the work may be duplicated.
    case revoked([TopicPartition], lost: Bool)
    /// The member has begun rejoining its group (its JoinGroup or SyncGroup is pending), as librdkafka's statistics
    /// report it: up to `statistics.interval.ms` late. The round ends with the next `assigned` (empty when nothing
    /// changes here). A commit sent meanwhile waits behind the pending request and is then answered for the
    /// generation that ended (`ILLEGAL_GENERATION`, which librdkafka takes for a lost assignment).
    case rejoining
}

/// What one poll of a consumer returned, in the order librdkafka served it: a message after a rebalance event
/// belongs to the assignment that event made.
public enum KafkaConsumerEvent: Sendable, Hashable {
    /// A message of an assigned partition.
    case message(KafkaMessage)
    /// The assignment changed.
    case rebalance(RebalanceEvent)
}
