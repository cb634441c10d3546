public import Foundation

/// Reads librdkafka's statistics JSON (emitted every `statistics.interval.ms`).
public enum KafkaStatistics {
    /// Consumer lag per assigned partition from one statistics document, or `nil` when the document is not
    /// readable. Partitions whose lag librdkafka does not know yet (`-1`) are left out.
    public static func consumerLag(fromJSON data: Data) -> [TopicPartition: Int64]? {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let topics = root["topics"] as? [String: Any]
        else { return nil }
        var lag: [TopicPartition: Int64] = [:]
        for (topic, value) in topics {
            guard let partitions = (value as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (key, partitionValue) in partitions {
                guard let partition = Int32(key), partition >= 0,
                    let fields = partitionValue as? [String: Any],
                    let consumerLag = (fields["consumer_lag"] as? NSNumber)?.int64Value, consumerLag >= 0
                else { continue }
                lag[TopicPartition(topic: topic, partition: partition)] = consumerLag
            }
        }
        return lag
    }
}
