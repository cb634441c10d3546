import Foundation
import Kafka
import Logging

/// Fills a topic of a benchmark's mock cluster before the measurement starts.
enum BenchTopic {
    /// Produces `count` messages keyed by their index, with values from `value`, keeping up to `window` sends in
    /// flight; returns when the broker has acknowledged every one.
    static func produce(
        count: Int, topic: String, bootstrapServers: String, window: Int = 5_000, logger: Logger,
        value: @escaping @Sendable (Int) -> [UInt8]
    ) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: bootstrapServers, properties: ["queue.buffering.max.messages": "\(window * 2)"]),
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                if index >= window { try await group.next() }
                group.addTask {
                    _ = try await producer.send(
                        KafkaRecord(topic: topic, key: Array("\(index)".utf8), value: value(index)))
                }
            }
            try await group.waitForAll()
        }
        await producer.close()
    }
}
