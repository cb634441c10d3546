public import Foundation

/// What the worker reads from librdkafka's statistics JSON (emitted every `statistics.interval.ms`).
public struct KafkaStatistics: Sendable, Equatable {
    /// Consumer lag per assigned partition. Partitions whose lag librdkafka does not know yet (`-1`) are left out.
    public var consumerLag: [TopicPartition: Int64]
    /// The group member's join state (`cgrp.join_state`: `steady`, `wait-join`, …), `nil` for a client in no group.
    public var groupJoinState: String?

    /// Reads one statistics document; `nil` when it is not readable.
    public init?(json data: Data) {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        var lag: [TopicPartition: Int64] = [:]
        for (topic, value) in root["topics"] as? [String: Any] ?? [:] {
            guard let partitions = (value as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (key, partitionValue) in partitions {
                guard let partition = Int32(key), partition >= 0,
                    let fields = partitionValue as? [String: Any],
                    let consumerLag = (fields["consumer_lag"] as? NSNumber)?.int64Value, consumerLag >= 0
                else { continue }
                lag[TopicPartition(topic: topic, partition: partition)] = consumerLag
            }
        }
        consumerLag = lag
        groupJoinState = (root["cgrp"] as? [String: Any])?["join_state"] as? String
    }

    /// Whether the member is rejoining its group: its JoinGroup or SyncGroup is pending, or about to be sent
    /// (librdkafka 2.0.2's join states).
    public var isRejoining: Bool {
        guard let groupJoinState else { return false }
        return ["init", "wait-join", "wait-metadata", "wait-sync"].contains(groupJoinState)
    }
}
