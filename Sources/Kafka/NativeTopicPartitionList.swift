import CRdKafka

/// Owns an `rd_kafka_topic_partition_list_t` for the duration of one call into librdkafka.
final class NativeTopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
    }

    /// A list of `partitions` with the offset librdkafka should treat as "not given".
    convenience init(_ partitions: some Collection<TopicPartition>) {
        self.init(capacity: partitions.count)
        for partition in partitions { add(partition, offset: Int64(RD_KAFKA_OFFSET_INVALID)) }
    }

    /// A list of partitions with an offset each (for storing or committing offsets).
    convenience init(offsets: [TopicPartition: Int64]) {
        self.init(capacity: offsets.count)
        for (partition, offset) in offsets { add(partition, offset: offset) }
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    func add(_ partition: TopicPartition, offset: Int64) {
        let element = rd_kafka_topic_partition_list_add(pointer, partition.topic, partition.partition)!
        element.pointee.offset = offset
    }

    /// The first per-partition error in the list, if any.
    var firstError: KafkaError? {
        for element in Self.elements(of: pointer) where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            return KafkaError(element.err, message: "\(partition): \(String(cString: rd_kafka_err2str(element.err)))")
        }
        return nil
    }

    static func elements(
        of list: UnsafePointer<rd_kafka_topic_partition_list_t>
    ) -> UnsafeBufferPointer<rd_kafka_topic_partition_t> {
        UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
    }

    static func partitions(of list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
        guard let list else { return [] }
        return elements(of: list).map { TopicPartition(topic: String(cString: $0.topic), partition: $0.partition) }
    }

    static func offsets(of list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for element in elements(of: list) {
            result[TopicPartition(topic: String(cString: element.topic), partition: element.partition)] =
                element.offset
        }
        return result
    }
}
