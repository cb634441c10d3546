import CRdKafka
public import Logging

/// librdkafka's in-process mock Kafka cluster, listening on loopback TCP ports so that any client can connect
/// to ``bootstrapServers``. It speaks the real protocol, including consumer groups and idempotent produce,
/// and can take brokers down and answer requests with injected errors.
public final class MockCluster: Sendable {
    private let cluster: MockClusterPointer

    /// Starts a cluster of `brokers` brokers (ids 1 through `brokers`).
    public init(brokers: Int32 = 3, logger: Logger = Logger(label: "upload-purger.kafka.mock")) throws(KafkaError) {
        let context = KafkaClientContext(logger: logger)
        let conf = try NativeConfiguration.make([["log.connection.close": "false"]])
        context.installCommonCallbacks(on: conf)
        let owner = try KafkaHandle(type: RD_KAFKA_PRODUCER, conf: conf, context: context)
        guard let pointer = rd_kafka_mock_cluster_new(owner.pointer, brokers) else {
            throw KafkaError(code: .invalidConfiguration, message: "the mock cluster did not start")
        }
        cluster = MockClusterPointer(pointer, owner: owner)
    }

    /// The cluster's broker list, for `bootstrap.servers`.
    public var bootstrapServers: String { String(cString: rd_kafka_mock_cluster_bootstraps(cluster.pointer)) }

    /// Creates `topic` with `partitions` partitions.
    public func createTopic(_ topic: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        let result = rd_kafka_mock_topic_create(cluster.pointer, topic, partitions, replicationFactor)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Takes broker `id` down: its connections close and new ones are refused until ``setBrokerUp(_:)``.
    public func setBrokerDown(_ id: Int32) throws(KafkaError) {
        let result = rd_kafka_mock_broker_set_down(cluster.pointer, id)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Brings broker `id` back.
    public func setBrokerUp(_ id: Int32) throws(KafkaError) {
        let result = rd_kafka_mock_broker_set_up(cluster.pointer, id)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Makes the next requests of kind `api` (to any broker) fail with `errors`, in order, one per request.
    public func pushRequestErrors(_ api: KafkaAPI, errors: [KafkaError.Code]) {
        var native = errors.map(\.native)
        rd_kafka_mock_push_request_errors_array(cluster.pointer, api.rawValue, native.count, &native)
    }

    /// Forgets every injected request error.
    public func clearRequestErrors(_ api: KafkaAPI) {
        rd_kafka_mock_clear_request_errors(cluster.pointer, api.rawValue)
    }

    /// Moves leadership of `partition` to broker `broker`.
    public func setPartitionLeader(_ partition: TopicPartition, broker: Int32) throws(KafkaError) {
        let result = rd_kafka_mock_partition_set_leader(
            cluster.pointer, partition.topic, partition.partition, broker)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }
}

/// A Kafka protocol request kind (API key), for error injection.
public struct KafkaAPI: Hashable, Sendable {
    /// The protocol's API key.
    public let rawValue: Int16

    /// Produce requests.
    public static let produce = KafkaAPI(rawValue: 0)
    /// Fetch requests.
    public static let fetch = KafkaAPI(rawValue: 1)
    /// Offset commits.
    public static let offsetCommit = KafkaAPI(rawValue: 8)
    /// Offset fetches (reading committed offsets).
    public static let offsetFetch = KafkaAPI(rawValue: 9)
    /// Group heartbeats.
    public static let heartbeat = KafkaAPI(rawValue: 12)
    /// Group synchronisation (a member receiving its assignment).
    public static let syncGroup = KafkaAPI(rawValue: 14)
}

/// Owns the mock cluster pointer and keeps the client handle that hosts it alive until the cluster is gone.
private final class MockClusterPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    private let owner: KafkaHandle

    init(_ pointer: OpaquePointer, owner: KafkaHandle) {
        self.pointer = pointer
        self.owner = owner
    }

    deinit { rd_kafka_mock_cluster_destroy(pointer) }
}
