import CRdKafka
import Foundation
import Synchronization

/// Owns one `rd_kafka_t` and the context its callbacks use; frees the handle when released.
///
/// librdkafka handles are thread-safe, so the pointer may be used from any thread; what is not thread-safe
/// (closing) is guarded here.
final class KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    private let context: KafkaClientContext
    private let isConsumer: Bool
    private let closed = Atomic<Bool>(false)

    /// Creates the handle; takes ownership of `conf` (destroyed here on failure).
    init(type: rd_kafka_type_t, conf: OpaquePointer, context: KafkaClientContext) throws(KafkaError) {
        var errorText = [CChar](repeating: 0, count: 512)
        guard let pointer = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(
                code: .invalidConfiguration, message: String(nulTerminated: errorText), isRetriable: false)
        }
        self.pointer = pointer
        self.context = context
        self.isConsumer = type == RD_KAFKA_CONSUMER
    }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Leaves the consumer group for at most `timeout`, handing the final rebalance to `rebalance`. Returns
    /// whether the consumer closed in time. Blocking: call it on the consumer's own queue.
    ///
    /// The close queue is served with the event API: besides rebalances it can carry fetched messages and
    /// errors, which callback serving (`rd_kafka_queue_poll_callback`) cannot handle.
    func closeConsumer(
        within timeout: Duration,
        rebalance: (rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> Void
    ) -> Bool {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return true }
        let queue = rd_kafka_queue_new(pointer)!
        defer { rd_kafka_queue_destroy(queue) }
        if let error = rd_kafka_consumer_close_queue(pointer, queue) {
            context.logger.warning(
                "Closing the consumer failed", metadata: ["error": "\(KafkaError(consuming: error))"])
            return false
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while rd_kafka_consumer_closed(pointer) == 0 {
            guard ContinuousClock.now < deadline else { return false }
            guard let event = rd_kafka_queue_poll(queue, 50) else { continue }
            defer { rd_kafka_event_destroy(event) }
            switch Int32(rd_kafka_event_type(event)) {
            case RD_KAFKA_EVENT_REBALANCE:
                rebalance(rd_kafka_event_error(event), rd_kafka_event_topic_partition_list(event))
            case RD_KAFKA_EVENT_ERROR:
                let error = KafkaError(
                    rd_kafka_event_error(event), message: String(cString: rd_kafka_event_error_string(event)))
                context.logger.debug("Error while closing the consumer", metadata: ["error": "\(error)"])
            default:
                break
            }
        }
        return true
    }

    deinit {
        guard isConsumer else {
            rd_kafka_destroy(pointer)
            return
        }
        guard context.wasAssigned || !Self.destroyAbortsBeforeFirstAssignment else {
            // librdkafka before 2.3.0 aborts the process on an assertion when it destroys a cooperative-sticky
            // consumer that has joined its group but never received an assignment (its assignor keeps no state
            // yet: librdkafka issue #4312). Such a consumer owns no partitions: it leaves the group and is kept,
            // not destroyed, until the process exits.
            if !isClosed { rd_kafka_unsubscribe(pointer) }
            context.logger.debug(
                "Consumer kept until the process exits: it never received an assignment, and destroying it would abort (librdkafka #4312)"
            )
            KeptConsumers.keep(pointer, context: context)
            return
        }
        // A consumer is closed explicitly (with a deadline) or, when dropped without closing, left abruptly:
        // never let destruction block on a group that cannot be reached.
        rd_kafka_destroy_flags(pointer, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    }

    /// Whether the linked librdkafka has issue #4312 (fixed in 2.3.0).
    private static let destroyAbortsBeforeFirstAssignment = rd_kafka_version() < 0x0203_0000
}

/// The consumers this process keeps instead of destroying them (see `KafkaHandle.deinit`), with the contexts
/// their callbacks use.
private enum KeptConsumers {
    private final class Kept: @unchecked Sendable {
        let pointer: OpaquePointer
        let context: KafkaClientContext

        init(_ pointer: OpaquePointer, context: KafkaClientContext) {
            self.pointer = pointer
            self.context = context
        }
    }

    private static let kept = Mutex<[Kept]>([])

    static func keep(_ pointer: OpaquePointer, context: KafkaClientContext) {
        kept.withLock { $0.append(Kept(pointer, context: context)) }
    }
}
