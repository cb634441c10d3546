import Foundation
import Kafka
import Logging

/// Fills a topic of a benchmark's mock cluster before the measurement starts.
enum BenchTopic {
    /// Produces `count` messages keyed by their index, with values from `value`, keeping up to `window` sends in
    /// flight; returns when the broker has acknowledged every one.
    ///
    /// librdkafka's mock cluster keeps at most 5 MB per partition and silently drops older messages, so this throws
    /// when the values would not fit `partitions` (with a margin for record overhead and uneven spread).
    static func produce(
        count: Int, topic: String, partitions: Int32, bootstrapServers: String, window: Int = 5_000, logger: Logger,
        value: @escaping @Sendable (Int) -> [UInt8]
    ) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: bootstrapServers, properties: ["queue.buffering.max.messages": "\(window * 2)"]),
            logger: logger)
        // Each send returns the bytes it stored, with a margin for the record's own overhead.
        let bytes = try await withThrowingTaskGroup(of: Int.self) { group in
            var bytes = 0
            for index in 0..<count {
                if index >= window { bytes += try await group.next() ?? 0 }
                group.addTask {
                    let produced = value(index)
                    _ = try await producer.send(
                        KafkaRecord(topic: topic, key: Array("\(index)".utf8), value: produced))
                    return produced.count + 70
                }
            }
            for try await stored in group { bytes += stored }
            return bytes
        }
        await producer.close()
        let perPartition = bytes / Int(partitions)
        guard perPartition <= 4 * 1_048_576 else {
            throw BenchTopicError(
                message: "\(perPartition / 1024) KB per partition of \(topic): the mock cluster keeps only 5 MB per "
                    + "partition; give more --partitions")
        }
    }
}

/// The topic cannot hold what the benchmark needs.
struct BenchTopicError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
