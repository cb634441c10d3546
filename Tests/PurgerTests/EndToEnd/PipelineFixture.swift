import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Purger
import ServiceLifecycle
import Synchronization
import Testing

/// The whole pipeline on real parts: librdkafka's mock cluster over TCP and the CMA simulator over loopback HTTP.
final class PipelineFixture: Sendable {
    let cluster: MockCluster
    let simulator: CMASimulator
    let baseURL: String
    let requestsTopic: String
    let resultsTopic: String
    let dlqTopic: String
    let partitions: Int32
    static let token = "e2e-secret-token-4f9c2a"

    init(
        partitions: Int32 = 3, simulator configuration: SimulatorConfiguration = PipelineFixture.fastSimulator()
    ) async throws {
        cluster = try MockCluster(brokers: 3, logger: quietLogger)
        let suffix = UUID().uuidString.prefix(8)
        requestsTopic = "requests-\(suffix)"
        resultsTopic = "results-\(suffix)"
        dlqTopic = "dlq-\(suffix)"
        self.partitions = partitions
        try cluster.createTopic(requestsTopic, partitions: partitions)
        try cluster.createTopic(resultsTopic, partitions: 3)
        try cluster.createTopic(dlqTopic, partitions: 1)
        simulator = CMASimulator(configuration: configuration, logger: quietLogger)
        baseURL = try await simulator.start()
    }

    static func fastSimulator(
        uploads: Int = 30_000, inUse: Double = 0.05, faults: SimulatorFaults = .init(), token: String = token,
        rateLimit: RateLimit = RateLimit(requests: 2_000, window: .seconds(1)),
        jobBaseDuration: Duration = .milliseconds(20), maxConcurrentJobs: Int? = nil
    ) -> SimulatorConfiguration {
        SimulatorConfiguration(
            apiToken: token, environments: [nil, "staging"], uploadsPerEnvironment: uploads, inUseFraction: inUse,
            rateLimit: rateLimit, jobBaseDuration: jobBaseDuration, jobPerUploadDuration: .microseconds(100),
            jobJitter: 0.1, maxConcurrentJobs: maxConcurrentJobs, faults: faults)
    }

    func settings(
        group: String, batchMaxSize: Int = 200, maxWait: Duration = .milliseconds(100), maxInFlight: Int = 8,
        shutdownTimeout: Duration = .seconds(20), kafkaProperties: [String: String] = [:]
    ) throws -> PurgeWorker.Settings {
        var configuration = try PurgerConfiguration.load(environment: [:])
        configuration.kafkaGroupID = group
        configuration.requestsTopic = requestsTopic
        configuration.resultsTopic = resultsTopic
        configuration.dlqTopic = dlqTopic
        configuration.batchMaxSize = batchMaxSize
        configuration.batchMaxWait = maxWait
        configuration.maxInFlightJobs = .fixed(maxInFlight)
        configuration.shutdownTimeout = shutdownTimeout
        configuration.kafkaProperties = [
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "300", "topic.metadata.refresh.interval.ms": "1000",
        ].merging(kafkaProperties) { $1 }
        return PurgeWorker.Settings(configuration: configuration, bootstrapServers: cluster.bootstrapServers)
    }

    func client(token: String = token, jobTimeout: Duration = .seconds(60), logger: Logger = quietLogger) -> CMAClient {
        CMAClient(
            configuration: CMAClientConfiguration(
                apiToken: APIToken(token), baseURL: baseURL, rateLimit: RateLimit(requests: 2_000, window: .seconds(1)),
                jobTimeout: jobTimeout, retryBaseDelay: .milliseconds(20), retryMaxDelay: .milliseconds(200)),
            logger: logger)
    }

    func worker(_ settings: PurgeWorker.Settings, client: CMAClient? = nil, logger: Logger = quietLogger) -> PurgeWorker
    {
        PurgeWorker(settings: settings, client: client ?? self.client(), logger: logger)
    }

    func producer(properties: [String: String] = [:]) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: cluster.bootstrapServers, properties: properties),
            logger: quietLogger)
    }

    /// Produces `records` to the requests topic one after another, in order; returns where each was stored.
    func produce(
        records: [(key: [UInt8]?, value: [UInt8]?)], with producer: KafkaProducer
    ) async throws -> [DeliveryReport] {
        var reports: [DeliveryReport] = []
        for record in records {
            reports.append(
                try await producer.send(KafkaRecord(topic: requestsTopic, key: record.key, value: record.value)))
        }
        return reports
    }

    /// Produces raw values (keys `k-<i>`), all acknowledged.
    func produce(_ values: [[UInt8]], with producer: KafkaProducer) async throws {
        let topic = requestsTopic
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, value) in values.enumerated() {
                if index >= 1000 { try await group.next() }
                group.addTask {
                    _ = try await producer.send(KafkaRecord(topic: topic, key: Array("k-\(index)".utf8), value: value))
                }
            }
            try await group.waitForAll()
        }
    }

    /// Reads `topic` from the start until `done` holds or `timeout` passes.
    func read(
        _ topic: String, timeout: Duration = .seconds(120), until done: @Sendable ([KafkaMessage]) -> Bool
    ) async throws -> [KafkaMessage] {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: cluster.bootstrapServers, groupID: "reader-\(UUID())",
                properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "300"]),
            logger: quietLogger)
        try consumer.subscribe(topics: [topic])
        var received: [KafkaMessage] = []
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !done(received), ContinuousClock.now < deadline {
            received += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
        }
        await consumer.close(timeout: .seconds(2))
        return received
    }

    /// Every message `topic` holds now (its partitions' end offsets say how many), for checks after the workers
    /// have stopped.
    func readAll(_ topic: String, partitions: Int32 = 3) async throws -> [KafkaMessage] {
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "probe"),
            logger: quietLogger)
        let ends = try await probe.endOffsets(of: (0..<partitions).map { TopicPartition(topic: topic, partition: $0) })
        await probe.close(timeout: .seconds(1))
        let total = Int(ends.values.reduce(0, +))
        let messages = try await read(topic) { $0.count >= total }
        #expect(messages.count == total, "read all \(total) messages of \(topic)")
        return messages
    }

    /// The committed offsets of `group` on the requests topic.
    func committedOffsets(group: String) async throws -> [TopicPartition: Int64?] {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group),
            logger: quietLogger)
        let offsets = try await consumer.committedOffsets(
            for: (0..<partitions).map { TopicPartition(topic: requestsTopic, partition: $0) })
        await consumer.close(timeout: .seconds(1))
        return offsets
    }

    /// How many messages each partition of the requests topic holds (its end offset), read by a full scan.
    func endOffsets(of messages: [KafkaMessage]) -> [TopicPartition: Int64] {
        var ends: [TopicPartition: Int64] = [:]
        for message in messages {
            ends[message.topicPartition] = max(ends[message.topicPartition] ?? 0, message.offset + 1)
        }
        return ends
    }
}

let quietLogger: Logger = {
    var logger = Logger(label: "e2e")
    logger.logLevel = .critical
    return logger
}()

/// Runs `worker` in a service group until `body` returns, then shuts it down gracefully; returns what
/// `body` returned and how the worker ended.
func withRunningWorker<T: Sendable>(
    _ worker: PurgeWorker, _ body: @Sendable () async throws -> T
) async throws -> (T, (any Error)?) {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(services: [worker], logger: quietLogger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        let ended = Mutex<(any Error)?>(nil)
        tasks.addTask {
            do { try await group.run() } catch { ended.withLock { $0 = error } }
        }
        let result = try await body()
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return (result, ended.withLock { $0 })
    }
}

/// A completion event as read back from the results topic.
struct ReadEvent: Decodable, Sendable {
    struct Request: Decodable, Sendable {
        var request_id: String
        var topic: String
        var partition: Int32
        var offset: Int64
    }
    var schema: String
    var batch_id: String
    var environment: String?
    var status: String
    var job_id: String?
    var job_ids: [String]
    var requested: Int
    var successful: Int
    var not_found: Int
    var failed: Int
    var failed_upload_ids: [String]?
    var counts: String
    var upload_ids: [String]
    var requests: [Request]
    var error: String?
    var attempts: Int
    var polls: Int
    var lookups: Int
    var first_enqueued_at: String?
    var submitted_at: String?
    var completed_at: String?

    init(_ message: KafkaMessage) throws {
        self = try JSONDecoder().decode(ReadEvent.self, from: Data(message.value ?? []))
    }
}

/// A valid deletion request as JSON.
func requestJSON(id: String, uploads: [UploadID], environment: String?) -> [UInt8] {
    var object: [String: Any] = ["request_id": id, "upload_ids": uploads.map(\.rawValue)]
    if let environment { object["environment"] = environment }
    object["requested_at"] = "2026-11-28T10:00:00Z"
    return Array(try! JSONSerialization.data(withJSONObject: object))
}

/// Waits until `condition` holds, checking every 20 ms, for at most `timeout`; returns whether it held.
func eventually(
    timeout: Duration = .seconds(60), _ condition: @Sendable () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The request ids of the completion events among `messages`, with how many events name each.
func reportedRequestIDs(_ messages: [KafkaMessage]) -> [String: Int] {
    var counts: [String: Int] = [:]
    for message in messages {
        guard let event = try? ReadEvent(message) else { continue }
        for request in Set(event.requests.map(\.request_id)) { counts[request, default: 0] += 1 }
    }
    return counts
}

/// `count` distinct upload ids of the simulator's `environment`, from `offset` in its seeded list.
func distinctUploads(_ fixture: PipelineFixture, count: Int, from offset: Int = 0, environment: String? = nil)
    -> [UploadID]
{
    Array(fixture.simulator.uploadIDs(environment: environment)[offset..<(offset + count)])
}
