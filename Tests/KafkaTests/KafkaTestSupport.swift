import Foundation
import Kafka
import Logging
import Synchronization
import Testing

/// A 3-broker mock cluster with one fresh topic, shared helpers for producing and consuming.
struct KafkaFixture {
    let cluster: MockCluster
    let topic: String
    let partitions: Int32

    init(partitions: Int32 = 3, brokers: Int32 = 3) throws {
        cluster = try MockCluster(brokers: brokers, logger: testLogger)
        topic = "test-\(UUID().uuidString.prefix(8))"
        self.partitions = partitions
        try cluster.createTopic(topic, partitions: partitions)
    }

    var allPartitions: [TopicPartition] {
        (0..<partitions).map { TopicPartition(topic: topic, partition: $0) }
    }

    func producer(_ properties: [String: String] = [:]) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: cluster.bootstrapServers, properties: properties),
            logger: testLogger)
    }

    func consumer(
        group: String, properties: [String: String] = [:],
        revocations: KafkaConsumer.RevocationHandling = .atOnce, logger: Logger = testLogger
    ) throws -> KafkaConsumer {
        var merged = [
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "300", "topic.metadata.refresh.interval.ms": "1000",
            "auto.commit.interval.ms": "500",
        ]
        merged.merge(properties) { _, new in new }
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: cluster.bootstrapServers, groupID: group, properties: merged,
                statisticsInterval: .milliseconds(200)),
            logger: logger, revocations: revocations)
        try consumer.subscribe(topics: [topic])
        return consumer
    }

    /// Produces `count` messages keyed `key-i` with value `value-i` and two headers, all acknowledged.
    func produce(_ count: Int, from start: Int = 0, with producer: KafkaProducer) async throws {
        let topic = self.topic
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in start..<(start + count) {
                if index - start >= 1000 { try await group.next() }
                group.addTask {
                    _ = try await producer.send(
                        KafkaRecord(
                            topic: topic, key: Array("key-\(index)".utf8), value: Array("value-\(index)".utf8),
                            headers: [
                                KafkaHeader(name: "index", text: "\(index)"), KafkaHeader(name: "empty", value: nil),
                            ]))
                }
            }
            try await group.waitForAll()
        }
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "kafka-tests")
    logger.logLevel = .critical
    return logger
}()

/// Keeps every line logged through its logger (message and metadata), for tests that wait for a log line.
final class LineRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    /// A logger that records everything, librdkafka's debug lines included.
    var logger: Logger {
        var logger = Logger(label: "kafka-tests") { _ in RecordingHandler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    /// Whether some recorded line contains `text`.
    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }

    fileprivate func record(_ line: String) { lines.withLock { $0.append(line) } }

    private struct RecordingHandler: LogHandler {
        let recorder: LineRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let metadata = self.metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.record("\(event.message) \(metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        }
    }
}

/// Polls until `done` says enough was received or `timeout` passes; returns everything received.
func consume(
    _ consumer: KafkaConsumer, timeout: Duration = .seconds(90),
    until done: ([KafkaMessage]) -> Bool
) async throws -> [KafkaMessage] {
    var received: [KafkaMessage] = []
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while !done(received), ContinuousClock.now < deadline {
        received += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
    }
    return received
}

/// Polls (serving rebalances) until `condition` holds or `timeout` passes; returns what was received meanwhile.
func poll(
    _ consumer: KafkaConsumer, timeout: Duration = .seconds(90), until condition: () throws -> Bool
) async throws -> [KafkaMessage] {
    var received: [KafkaMessage] = []
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while try !condition(), ContinuousClock.now < deadline {
        received += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
    }
    return received
}

extension KafkaMessage {
    var index: Int { Int(String(decoding: value ?? [], as: UTF8.self).dropFirst("value-".count))! }
}

/// A member that completes its own revocations: it records every rebalance, checks that revoked partitions are
/// still assigned when reported, stores and commits the offsets of what it processed in them, and only then
/// completes the revocation.
final class RevokingMember: Sendable {
    let consumer: KafkaConsumer
    let processed = ProcessedSet()
    private let state = Mutex<(events: [RebalanceEvent], revokedWhileAssigned: Bool, committedAtRevocation: Bool)>(
        ([], true, true))

    init(_ consumer: KafkaConsumer) { self.consumer = consumer }

    var events: [RebalanceEvent] { state.withLock { $0.events } }
    var revokedWhileAssigned: Bool { state.withLock { $0.revokedWhileAssigned } }
    var committedAtRevocation: Bool { state.withLock { $0.committedAtRevocation } }

    /// Polls, processing messages (recorded, offsets stored) and rebalances, until `condition` holds.
    func poll(timeout: Duration = .seconds(90), until condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !condition(), ContinuousClock.now < deadline {
            var offsets: [TopicPartition: Int64] = [:]
            for event in try await consumer.pollEvents(maxMessages: 500, timeout: .milliseconds(100)) {
                switch event {
                case .message(let message):
                    processed.insert([message.index])
                    offsets[message.topicPartition] = message.offset + 1
                case .rebalance(let rebalance):
                    try consumer.storeOffsets(offsets)
                    offsets = [:]
                    state.withLock { $0.events.append(rebalance) }
                    if case .revoked(let partitions, false) = rebalance { try await revoke(partitions) }
                }
            }
            try? consumer.storeOffsets(offsets)
        }
    }

    private func revoke(_ partitions: [TopicPartition]) async throws {
        let assigned = try consumer.assignment()
        if !Set(partitions).isSubset(of: assigned) { state.withLock { $0.revokedWhileAssigned = false } }
        // As the worker does: a commit refused while the group settles is tried again while the partitions are ours.
        var committed = false
        for _ in 0..<50 where !committed {
            do {
                try await consumer.commit()
                committed = true
            } catch {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        if !committed { state.withLock { $0.committedAtRevocation = false } }
        await consumer.completeRevocation(partitions)
    }
}
