/// How a ``KafkaConsumer`` connects and behaves.
///
/// Properties are applied in three layers: the project's defaults, then ``properties`` (any librdkafka
/// property, so operators can tune anything), then the settings the consumer's guarantees rest on, which
/// cannot be overridden: explicit offset storage (`enable.auto.offset.store=false`) and the
/// `cooperative-sticky` assignor with its rebalance callback.
public struct KafkaConsumerConfiguration: Sendable {
    /// The broker list (`bootstrap.servers`).
    public var bootstrapServers: String
    /// The consumer group (`group.id`).
    public var groupID: String
    /// Any librdkafka properties, by their librdkafka names.
    public var properties: [String: String]
    /// How often librdkafka reports statistics (consumer lag); `nil` turns them off.
    public var statisticsInterval: Duration?

    /// Makes a configuration for `groupID` on `bootstrapServers`.
    public init(
        bootstrapServers: String, groupID: String, properties: [String: String] = [:],
        statisticsInterval: Duration? = .seconds(5)
    ) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.properties = properties
        self.statisticsInterval = statisticsInterval
    }

    /// Defaults an operator may override. A new group starts at the earliest offset: for deletion requests,
    /// skipping the backlog would silently lose work.
    static let defaults: [String: String] = [
        "auto.offset.reset": "earliest",
        "enable.auto.commit": "true",
        "auto.commit.interval.ms": "5000",
        "enable.partition.eof": "false",
        "session.timeout.ms": "45000",
        "max.poll.interval.ms": "300000",
        "log.connection.close": "false",
        "client.id": "upload-purger",
    ]

    var layers: [[String: String]] {
        var required: [String: String] = [
            "bootstrap.servers": bootstrapServers,
            "group.id": groupID,
            "enable.auto.offset.store": "false",
            "partition.assignment.strategy": "cooperative-sticky",
        ]
        if let statisticsInterval {
            required["statistics.interval.ms"] = String(max(1, statisticsInterval.milliseconds))
        }
        return [Self.defaults, properties, required]
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
