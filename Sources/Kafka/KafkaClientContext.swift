import CRdKafka
import Foundation
import Logging
import Synchronization

/// What librdkafka's callbacks reach through the handle's opaque pointer. It lives as long as the handle that
/// points at it (the owning client keeps both), and is safe to use from librdkafka's threads.
final class KafkaClientContext: Sendable {
    let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var fatalError: KafkaError?
        var lastError: KafkaError?
        var consumerLag: [TopicPartition: Int64] = [:]
        var rebalances: [RebalanceEvent] = []
        var wasAssigned = false
        /// Whether the round the statistics show the member rejoining in has been reported.
        var rejoinReported = false
    }

    /// Whether rebalances are recorded for the consumer's polls to return.
    let reportsRebalances: Bool

    init(logger: Logger, reportsRebalances: Bool = false) {
        self.logger = logger
        self.reportsRebalances = reportsRebalances
    }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ rk: OpaquePointer?) -> KafkaClientContext? {
        guard let rk, let opaque = rd_kafka_opaque(rk) else { return nil }
        return Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    /// The fatal error librdkafka raised on this instance, if any: once set, the instance is unusable.
    var fatalError: KafkaError? { state.withLock { $0.fatalError } }

    /// The last asynchronous error (for example all brokers down), for health reporting.
    var lastError: KafkaError? { state.withLock { $0.lastError } }

    var consumerLag: [TopicPartition: Int64] { state.withLock { $0.consumerLag } }

    func record(error: KafkaError) {
        state.withLock {
            $0.lastError = error
            if error.isFatal { $0.fatalError = error }
        }
    }

    /// Keeps the lag of a statistics report and, for a consumer that reports rebalances, reports the start of a
    /// round the first time a report shows the member rejoining.
    func record(_ statistics: KafkaStatistics) {
        state.withLock { state in
            state.consumerLag = statistics.consumerLag
            guard reportsRebalances else { return }
            if !statistics.isRejoining {
                state.rejoinReported = false
            } else if !state.rejoinReported {
                state.rejoinReported = true
                state.rebalances.append(.rejoining)
            }
        }
    }

    /// Whether librdkafka has handed this consumer an assignment (possibly empty) at least once.
    var wasAssigned: Bool { state.withLock { $0.wasAssigned } }

    func recordAssignment() {
        state.withLock { $0.wasAssigned = true }
    }

    /// Keeps a rebalance the rebalance callback saw (on the poll thread) for the poll that served it to return.
    func record(rebalance: RebalanceEvent) {
        state.withLock { state in
            state.rebalances.append(rebalance)
            // The round is over: a report of the member rejoining again is a new round.
            if case .assigned = rebalance { state.rejoinReported = false }
        }
    }

    /// The rebalances recorded since the last call, oldest first.
    func takeRebalances() -> [RebalanceEvent] {
        state.withLock { state in
            defer { state.rebalances = [] }
            return state.rebalances
        }
    }

    /// Installs the callbacks every client uses: logs, errors and statistics.
    func installCommonCallbacks(on conf: OpaquePointer) {
        rd_kafka_conf_set_opaque(conf, opaque)
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let context = KafkaClientContext.from(rk), let facility, let message else { return }
            context.logger.log(
                level: Logger.Level(syslog: level), "librdkafka",
                metadata: ["facility": "\(String(cString: facility))", "detail": "\(String(cString: message))"])
        }
        rd_kafka_conf_set_error_cb(conf) { rk, code, reason, _ in
            guard let context = KafkaClientContext.from(rk) else { return }
            var error = KafkaError(code: KafkaError.Code(rawValue: code), message: reason.map { String(cString: $0) })
            if code == RD_KAFKA_RESP_ERR__FATAL.rawValue, let rk {
                var text = [CChar](repeating: 0, count: 512)
                let underlying = rd_kafka_fatal_error(rk, &text, text.count)
                error = KafkaError(
                    code: KafkaError.Code(underlying), message: String(nulTerminated: text), isRetriable: false,
                    isFatal: true)
            }
            context.record(error: error)
            context.logger.warning("Kafka client error", metadata: ["error": "\(error)"])
        }
        rd_kafka_conf_set_stats_cb(conf) { rk, json, length, _ in
            guard let context = KafkaClientContext.from(rk), let json else { return 0 }
            let bytes = Data(bytes: json, count: length)
            if let statistics = KafkaStatistics(json: bytes) { context.record(statistics) }
            return 0
        }
    }
}

extension Logger.Level {
    /// Maps a syslog level (librdkafka's) to a swift-log level.
    init(syslog level: Int32) {
        switch level {
        case ...2: self = .critical
        case 3: self = .error
        case 4: self = .warning
        case 5: self = .notice
        case 6: self = .info
        default: self = .debug
        }
    }
}

extension String {
    /// Decodes a NUL-terminated C string buffer filled by librdkafka.
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
