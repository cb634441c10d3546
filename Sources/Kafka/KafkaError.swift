import CRdKafka

/// An error reported by librdkafka, keeping its `rd_kafka_resp_err_t` code and its class.
///
/// `isRetriable` says that the same operation may succeed later (a broker is away, a leader moves);
/// `isFatal` says that the client instance can no longer be used and must be recreated.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The librdkafka error code (`rd_kafka_resp_err_t`).
    public let code: Code
    /// librdkafka's explanation, or the context in which the error happened.
    public let message: String
    /// The operation may succeed if tried again.
    public let isRetriable: Bool
    /// The client instance is unusable (for example a fenced idempotent producer).
    public let isFatal: Bool

    /// Makes an error for `code` with `message`; retriable and fatal default to librdkafka's classification.
    public init(code: Code, message: String? = nil, isRetriable: Bool? = nil, isFatal: Bool = false) {
        self.code = code
        self.message = message ?? code.explanation
        self.isRetriable = isRetriable ?? code.isRetriableByDefault
        self.isFatal = isFatal
    }

    init(_ code: rd_kafka_resp_err_t, message: String? = nil) {
        self.init(code: Code(code), message: message)
    }

    /// Takes over an `rd_kafka_error_t`, keeping its retriable and fatal flags, and destroys it.
    init(consuming error: OpaquePointer) {
        defer { rd_kafka_error_destroy(error) }
        self.init(
            code: Code(rd_kafka_error_code(error)),
            message: String(cString: rd_kafka_error_string(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0
        )
    }

    public var description: String {
        var text = "\(code.name): \(message)"
        if isFatal { text += " (fatal)" } else if isRetriable { text += " (retriable)" }
        return text
    }
}

extension KafkaError {
    /// The waiting caller was cancelled; the operation itself may still complete.
    public static let interrupted = KafkaError(
        code: .interrupted, message: "cancelled while waiting", isRetriable: false)

    /// A librdkafka error code (`rd_kafka_resp_err_t`): negative values are client-side, positive ones come
    /// from the broker.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The raw `rd_kafka_resp_err_t` value.
        public let rawValue: Int32

        /// Wraps a raw `rd_kafka_resp_err_t` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        init(_ code: rd_kafka_resp_err_t) { self.rawValue = code.rawValue }

        var native: rd_kafka_resp_err_t { rd_kafka_resp_err_t(rawValue: rawValue) }

        /// librdkafka's symbolic name, for example `NOT_LEADER_FOR_PARTITION` or `_TRANSPORT`.
        public var name: String { String(cString: rd_kafka_err2name(native)) }

        /// librdkafka's human-readable explanation.
        public var explanation: String { String(cString: rd_kafka_err2str(native)) }

        public var description: String { name }

        /// Codes that describe a passing condition: the same request can succeed later.
        var isRetriableByDefault: Bool { Self.retriable.contains(self) }

        private static let retriable: Set<Code> = [
            .transport, .allBrokersDown, .timedOut, .messageTimedOut, .queueFull, .requestTimedOut,
            .notLeaderForPartition, .leaderNotAvailable, .notEnoughReplicas, .notEnoughReplicasAfterAppend,
            .coordinatorNotAvailable, .notCoordinator, .coordinatorLoadInProgress, .networkException,
        ]

        // MARK: - Codes the project names

        /// The operation finished without error.
        public static let noError = Code(RD_KAFKA_RESP_ERR_NO_ERROR)
        /// A broker connection failed.
        public static let transport = Code(RD_KAFKA_RESP_ERR__TRANSPORT)
        /// No broker is reachable.
        public static let allBrokersDown = Code(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        /// A local operation timed out.
        public static let timedOut = Code(RD_KAFKA_RESP_ERR__TIMED_OUT)
        /// A message was not delivered within `message.timeout.ms`.
        public static let messageTimedOut = Code(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
        /// The producer's local queue is full.
        public static let queueFull = Code(RD_KAFKA_RESP_ERR__QUEUE_FULL)
        /// The client was destroyed or closed while the operation waited.
        public static let destroyed = Code(RD_KAFKA_RESP_ERR__DESTROY)
        /// No offset was stored or needed committing.
        public static let noOffset = Code(RD_KAFKA_RESP_ERR__NO_OFFSET)
        /// The request to a broker timed out.
        public static let requestTimedOut = Code(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
        /// The broker is not the partition's leader.
        public static let notLeaderForPartition = Code(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
        /// The partition has no leader right now.
        public static let leaderNotAvailable = Code(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
        /// Too few in-sync replicas to accept the write.
        public static let notEnoughReplicas = Code(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
        /// The write was stored with too few in-sync replicas.
        public static let notEnoughReplicasAfterAppend = Code(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        /// The group coordinator is unavailable.
        public static let coordinatorNotAvailable = Code(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
        /// The broker is not the group's coordinator.
        public static let notCoordinator = Code(RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
        /// The coordinator is loading the group.
        public static let coordinatorLoadInProgress = Code(RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS)
        /// A network error on the broker side.
        public static let networkException = Code(RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION)
        /// The operation was interrupted (the waiting task was cancelled).
        public static let interrupted = Code(RD_KAFKA_RESP_ERR__INTR)
        /// The commit carried a group generation that has ended (the member rejoined meanwhile).
        public static let illegalGeneration = Code(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
        /// The group is rebalancing: a commit may succeed once the rebalance is through.
        public static let rebalanceInProgress = Code(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
        /// The group coordinator does not know the member (its session ended): it must join again.
        public static let unknownMemberID = Code(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
        /// The message is larger than the broker accepts.
        public static let messageSizeTooLarge = Code(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        /// The client may not write to the topic.
        public static let topicAuthorizationFailed = Code(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        /// The topic or partition does not exist.
        public static let unknownTopicOrPartition = Code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        /// A configuration property is unknown or its value invalid.
        public static let invalidConfiguration = Code(RD_KAFKA_RESP_ERR__INVALID_ARG)
    }
}
