import CRdKafka
import Dispatch
import Foundation
public import Logging
import Synchronization

/// A member of a Kafka consumer group that stores offsets only when told to.
///
/// Every blocking librdkafka call runs on the consumer's own serial dispatch queue, never on Swift's
/// cooperative pool. Rebalances use the `cooperative-sticky` assignor. A consumer made with
/// ``RevocationHandling/byApplication`` hands assignment changes out as values of
/// ``pollEvents(maxMessages:timeout:)`` and keeps revoked partitions assigned until
/// ``completeRevocation(_:)``, so their finished work can be stored and committed first; nothing blocks
/// librdkafka's poll thread meanwhile.
public final class KafkaConsumer: Sendable {
    /// Who completes a revocation.
    public enum RevocationHandling: Sendable {
        /// The consumer unassigns revoked partitions at once; ``pollEvents(maxMessages:timeout:)`` reports no
        /// rebalances. For readers that store no offsets of their own.
        case atOnce
        /// Rebalances are reported by ``pollEvents(maxMessages:timeout:)``; revoked partitions stay assigned
        /// until ``completeRevocation(_:)`` (the group waits for it, within `max.poll.interval.ms`).
        case byApplication
    }

    private let handle: KafkaHandle
    private let context: KafkaClientContext
    private let pollQueue = DispatchQueue(label: "upload-purger.kafka.consumer.poll")
    private let commitQueue = DispatchQueue(label: "upload-purger.kafka.consumer.commit")

    /// Creates the consumer (it connects lazily).
    public init(
        configuration: KafkaConsumerConfiguration, logger: Logger, revocations: RevocationHandling = .atOnce
    ) throws(KafkaError) {
        let context = KafkaClientContext(logger: logger, reportsRebalances: revocations == .byApplication)
        let conf = try NativeConfiguration.make(configuration.layers)
        context.installCommonCallbacks(on: conf)
        switch revocations {
        case .atOnce:
            rd_kafka_conf_set_rebalance_cb(conf) { rk, code, partitions, _ in
                guard let rk, let context = KafkaClientContext.from(rk) else { return }
                KafkaConsumer.rebalance(rk: rk, code: code, partitions: partitions, context: context, deferring: false)
            }
        case .byApplication:
            rd_kafka_conf_set_rebalance_cb(conf) { rk, code, partitions, _ in
                guard let rk, let context = KafkaClientContext.from(rk) else { return }
                KafkaConsumer.rebalance(rk: rk, code: code, partitions: partitions, context: context, deferring: true)
            }
        }
        self.handle = try KafkaHandle(type: RD_KAFKA_CONSUMER, conf: conf, context: context)
        self.context = context
        // Serve rebalances, statistics and errors from the same queue as messages: one poll call does all.
        rd_kafka_poll_set_consumer(handle.pointer)
    }

    /// Applies a rebalance on librdkafka's poll thread. Assignments take effect at once; a revocation is
    /// completed at once unless `deferring` (then the application completes it) or the partitions are lost.
    /// With `deferring`, both are recorded for the poll that served them to return.
    private static func rebalance(
        rk: OpaquePointer, code: rd_kafka_resp_err_t,
        partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, context: KafkaClientContext,
        deferring: Bool
    ) {
        let changed = NativeTopicPartitionList.partitions(of: partitions)
        switch code {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            context.recordAssignment()
            if let error = rd_kafka_incremental_assign(rk, partitions) {
                context.logger.error(
                    "Assigning partitions failed", metadata: ["error": "\(KafkaError(consuming: error))"])
            }
            context.logger.info("Partitions assigned", metadata: ["partitions": "\(changed)"])
            if deferring { context.record(rebalance: .assigned(changed)) }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            context.logger.info(
                "Partitions revoked", metadata: ["partitions": "\(changed)", "lost": "\(lost)"])
            if deferring { context.record(rebalance: .revoked(changed, lost: lost)) }
            if !deferring || lost { unassign(rk: rk, partitions: partitions, context: context) }
        default:
            context.logger.error("Rebalance failed", metadata: ["error": "\(KafkaError(code))"])
            rd_kafka_assign(rk, nil)
        }
    }

    private static func unassign(
        rk: OpaquePointer, partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
        context: KafkaClientContext
    ) {
        if let error = rd_kafka_incremental_unassign(rk, partitions) {
            context.logger.error(
                "Unassigning partitions failed", metadata: ["error": "\(KafkaError(consuming: error))"])
        }
    }

    /// Completes the revocation of `partitions` that ``pollEvents(maxMessages:timeout:)`` reported: they leave
    /// this member's assignment and the group may give them to another member. Store and commit their
    /// finished work before.
    public func completeRevocation(_ partitions: some Collection<TopicPartition>) async {
        guard !partitions.isEmpty else { return }
        let handle = self.handle
        let context = self.context
        let partitions = Array(partitions)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pollQueue.async {
                let list = NativeTopicPartitionList(partitions)
                if !handle.isClosed { Self.unassign(rk: handle.pointer, partitions: list.pointer, context: context) }
                continuation.resume()
            }
        }
    }

    /// Joins the group and subscribes to `topics`.
    public func subscribe(topics: [String]) throws(KafkaError) {
        let list = NativeTopicPartitionList(capacity: topics.count)
        for topic in topics {
            list.add(TopicPartition(topic: topic, partition: RD_KAFKA_PARTITION_UA), offset: 0)
        }
        let result = rd_kafka_subscribe(handle.pointer, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Waits up to `timeout` for a first message, then takes what else is ready, up to `maxMessages`.
    /// Also serves rebalances, statistics and errors. Throws only when the consumer has failed fatally.
    public func poll(maxMessages: Int = 500, timeout: Duration = .milliseconds(100)) async throws(KafkaError)
        -> [KafkaMessage]
    {
        try await pollEvents(maxMessages: maxMessages, timeout: timeout).compactMap { event in
            if case .message(let message) = event { message } else { nil }
        }
    }

    /// Like ``poll(maxMessages:timeout:)``, with the assignment changes served meanwhile, in order (reported
    /// only by a consumer made with ``RevocationHandling/byApplication``).
    public func pollEvents(maxMessages: Int = 500, timeout: Duration = .milliseconds(100)) async throws(KafkaError)
        -> [KafkaConsumerEvent]
    {
        let handle = self.handle
        let context = self.context
        let result: Result<[KafkaConsumerEvent], KafkaError> = await withCheckedContinuation { continuation in
            pollQueue.async {
                continuation.resume(
                    returning: Self.pollBlocking(
                        handle: handle, context: context, maxMessages: maxMessages, timeout: timeout))
            }
        }
        return try result.get()
    }

    private static func pollBlocking(
        handle: KafkaHandle, context: KafkaClientContext, maxMessages: Int, timeout: Duration
    ) -> Result<[KafkaConsumerEvent], KafkaError> {
        guard !handle.isClosed else { return .failure(KafkaError(code: .destroyed, message: "consumer is closed")) }
        var events: [KafkaConsumerEvent] = []
        var messages = 0
        var wait = Int32(clamping: timeout.milliseconds)
        while messages < maxMessages {
            let native = rd_kafka_consumer_poll(handle.pointer, wait)
            // Rebalances this call served came before the message it returns.
            events += context.takeRebalances().map(KafkaConsumerEvent.rebalance)
            guard let native else { break }
            wait = 0
            defer { rd_kafka_message_destroy(native) }
            let message = native.pointee
            guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if message.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    let error = KafkaError(message.err, message: Self.errorText(of: native))
                    context.record(error: error)
                    context.logger.warning("Consumer error", metadata: ["error": "\(error)"])
                }
                continue
            }
            events.append(.message(KafkaMessage(native: native)))
            messages += 1
        }
        if let fatal = context.fatalError { return .failure(fatal) }
        return .success(events)
    }

    private static func errorText(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> String {
        guard let text = rd_kafka_message_errstr(message) else { return "" }
        return String(cString: text)
    }

    /// Records `offsets` (each the offset of the *next* message to consume, that is last processed + 1) to be
    /// committed by the next commit. Non-blocking.
    public func storeOffsets(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = NativeTopicPartitionList(offsets: offsets)
        let result = rd_kafka_offsets_store(handle.pointer, list.pointer)
        if let error = list.firstError { throw error }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Commits the stored offsets and waits for the broker's answer. Nothing to commit is not an error. A
    /// cancelled caller stops waiting at once (``KafkaError/interrupted``); the commit itself goes on.
    public func commit() async throws(KafkaError) {
        try await commit(offsets: nil)
    }

    /// Commits `offsets` (each the next offset to consume) as given, for any partitions, assigned to this member
    /// or not: the group accepts a commit from any of its current members. Otherwise like ``commit()``.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        try await commit(offsets: Optional(offsets))
    }

    private func commit(offsets: [TopicPartition: Int64]?) async throws(KafkaError) {
        let handle = self.handle
        let answer = CommitAnswer()
        let result: rd_kafka_resp_err_t = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard answer.install(continuation) else { return }
                commitQueue.async {
                    guard let offsets else { return answer.finish(rd_kafka_commit(handle.pointer, nil, 0)) }
                    let list = NativeTopicPartitionList(offsets: offsets)
                    answer.finish(rd_kafka_commit(handle.pointer, list.pointer, 0))
                }
            }
        } onCancel: {
            answer.finish(RD_KAFKA_RESP_ERR__INTR)
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR || result == RD_KAFKA_RESP_ERR__NO_OFFSET else {
            throw result == RD_KAFKA_RESP_ERR__INTR ? .interrupted : KafkaError(result)
        }
    }

    /// The group's committed offsets for `partitions` (the next offset to consume; `nil` when none).
    public func committedOffsets(
        for partitions: [TopicPartition], timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Int64?] {
        let handle = self.handle
        let result: Result<[TopicPartition: Int64?], KafkaError> = await withCheckedContinuation { continuation in
            commitQueue.async {
                let list = NativeTopicPartitionList(partitions)
                let code = rd_kafka_committed(handle.pointer, list.pointer, Int32(clamping: timeout.milliseconds))
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    continuation.resume(returning: .failure(KafkaError(code)))
                    return
                }
                let offsets = NativeTopicPartitionList.offsets(of: list.pointer).mapValues { $0 >= 0 ? $0 : nil }
                continuation.resume(returning: .success(offsets))
            }
        }
        return try result.get()
    }

    /// The end offset (high watermark: the offset the next message will get) of each of `partitions`, as the
    /// partition leaders report it now.
    public func endOffsets(
        of partitions: [TopicPartition], timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Int64] {
        let handle = self.handle
        let result: Result<[TopicPartition: Int64], KafkaError> = await withCheckedContinuation { continuation in
            commitQueue.async {
                var ends: [TopicPartition: Int64] = [:]
                for partition in partitions {
                    var low: Int64 = 0
                    var high: Int64 = 0
                    let code = rd_kafka_query_watermark_offsets(
                        handle.pointer, partition.topic, partition.partition, &low, &high,
                        Int32(clamping: timeout.milliseconds))
                    guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                        continuation.resume(returning: .failure(KafkaError(code)))
                        return
                    }
                    ends[partition] = high
                }
                continuation.resume(returning: .success(ends))
            }
        }
        return try result.get()
    }

    /// The partitions currently assigned to this member.
    public func assignment() throws(KafkaError) -> Set<TopicPartition> {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let result = rd_kafka_assignment(handle.pointer, &list)
        defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
        return Set(NativeTopicPartitionList.partitions(of: list))
    }

    /// Stops fetching from `partitions`; the member keeps polling and stays in the group.
    public func pause(_ partitions: some Collection<TopicPartition>) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let list = NativeTopicPartitionList(partitions)
        let result = rd_kafka_pause_partitions(handle.pointer, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Resumes fetching from `partitions` at the position where fetching stopped.
    public func resume(_ partitions: some Collection<TopicPartition>) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let list = NativeTopicPartitionList(partitions)
        let result = rd_kafka_resume_partitions(handle.pointer, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Consumer lag per assigned partition from the latest statistics report.
    public var consumerLag: [TopicPartition: Int64] { context.consumerLag }

    /// The last asynchronous client error, such as all brokers being down.
    public var lastError: KafkaError? { context.lastError }

    /// Leaves the group and releases the client. The final revocation is completed at once: finish and commit
    /// the work of the assignment before.
    /// Returns by `timeout` even when no broker answers; then the group notices the member's absence only
    /// after its session times out.
    public func close(timeout: Duration = .seconds(10)) async {
        let handle = self.handle
        let context = self.context
        let logger = context.logger
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pollQueue.async {
                let closedInTime = handle.closeConsumer(within: timeout) { code, partitions in
                    Self.rebalance(
                        rk: handle.pointer, code: code, partitions: partitions, context: context, deferring: false)
                }
                if !closedInTime {
                    logger.warning("Consumer did not leave the group in time", metadata: ["timeout": "\(timeout)"])
                }
                continuation.resume()
            }
        }
    }
}

extension KafkaMessage {
    init(native: UnsafeMutablePointer<rd_kafka_message_t>) {
        let message = native.pointee
        let topic = String(cString: rd_kafka_topic_name(message.rkt))
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(native, &timestampType)
        self.init(
            topicPartition: TopicPartition(topic: topic, partition: message.partition),
            offset: message.offset,
            key: message.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.key_len)) },
            value: message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.len)) },
            headers: Self.headers(of: native),
            timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                ? nil : Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        )
    }

    private static func headers(of native: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(native, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return [] }
        var result: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            result.append(
                KafkaHeader(
                    name: name.map { String(cString: $0) } ?? "",
                    value: value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
            index += 1
        }
        return result
    }
}

/// The one answer of a commit: librdkafka's, or an interruption when the waiting task is cancelled first.
private final class CommitAnswer: Sendable {
    private let state = Mutex<State>(.waiting(nil))

    private enum State {
        case waiting(CheckedContinuation<rd_kafka_resp_err_t, Never>?)
        case answered
    }

    /// Takes the continuation; `false` (and the continuation resumed) when the caller was cancelled already.
    func install(_ continuation: CheckedContinuation<rd_kafka_resp_err_t, Never>) -> Bool {
        let installed = state.withLock { state in
            guard case .waiting = state else { return false }
            state = .waiting(continuation)
            return true
        }
        if !installed { continuation.resume(returning: RD_KAFKA_RESP_ERR__INTR) }
        return installed
    }

    func finish(_ result: rd_kafka_resp_err_t) {
        let continuation = state.withLock { state -> CheckedContinuation<rd_kafka_resp_err_t, Never>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .answered
            return continuation
        }
        continuation?.resume(returning: result)
    }
}
