import CRdKafka
import Dispatch
import Foundation
public import Logging
import Synchronization

/// How a ``KafkaProducer`` connects. `enable.idempotence=true` is always set: retried sends never duplicate
/// or reorder messages within a partition.
public struct KafkaProducerConfiguration: Sendable {
    /// The broker list (`bootstrap.servers`).
    public var bootstrapServers: String
    /// Any librdkafka properties, by their librdkafka names.
    public var properties: [String: String]

    /// Makes a configuration for `bootstrapServers`.
    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    static let defaults: [String: String] = [
        "linger.ms": "5",
        "log.connection.close": "false",
        "client.id": "upload-purger",
    ]

    var layers: [[String: String]] {
        [Self.defaults, properties, ["bootstrap.servers": bootstrapServers, "enable.idempotence": "true"]]
    }
}

/// An idempotent producer whose sends can be awaited until the broker acknowledges them.
///
/// A dedicated thread serves librdkafka's delivery reports; the cooperative pool never blocks.
public final class KafkaProducer: Sendable {
    private let handle: KafkaHandle
    private let context: KafkaClientContext
    private let poller = DeliveryPoller()
    private let blockingQueue = DispatchQueue(label: "upload-purger.kafka.producer.blocking")

    /// Creates the producer and starts serving its delivery reports.
    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        let context = KafkaClientContext(logger: logger)
        let conf = try NativeConfiguration.make(configuration.layers)
        context.installCommonCallbacks(on: conf)
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
            guard let message, let opaque = message.pointee._private else { return }
            let pending = Unmanaged<PendingDelivery>.fromOpaque(opaque).takeRetainedValue()
            let native = message.pointee
            if native.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                let topic = String(cString: rd_kafka_topic_name(native.rkt))
                pending.finish(
                    .success(
                        DeliveryReport(
                            topicPartition: TopicPartition(topic: topic, partition: native.partition),
                            offset: native.offset)))
            } else {
                // Not rd_kafka_message_errstr: for a producer's message it returns the payload, which is not
                // NUL-terminated (reading it as a C string reads past the payload and logs its content).
                pending.finish(.failure(KafkaError(native.err)))
            }
        }
        let handle = try KafkaHandle(type: RD_KAFKA_PRODUCER, conf: conf, context: context)
        self.handle = handle
        self.context = context
        let poller = self.poller
        Thread.detachNewThread {
            while !poller.stopping.load(ordering: .acquiring) { rd_kafka_poll(handle.pointer, 50) }
            poller.stopped.signal()
        }
    }

    /// Sends `record` and waits until the broker acknowledged it (all in-sync replicas) or delivery failed.
    /// Retriable broker errors are retried inside librdkafka without duplicates; what reaches the caller is
    /// final for this message.
    public func send(_ record: KafkaRecord) async throws(KafkaError) -> DeliveryReport {
        while true {
            if let fatal = context.fatalError { throw fatal }
            guard !poller.stopping.load(ordering: .acquiring) else {
                throw KafkaError(code: .destroyed, message: "producer is closed", isRetriable: false)
            }
            // A cancelled send returns at once with `interrupted`; the record may still be delivered.
            let pending = PendingDelivery()
            let result: Result<DeliveryReport, KafkaError> = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    if pending.install(continuation) { enqueue(record, pending: pending) }
                }
            } onCancel: {
                pending.finish(.failure(.interrupted))
            }
            switch result {
            case .failure(let error) where error.code == .queueFull:
                // The local queue is full: wait for deliveries to make room rather than fail the caller.
                try? await Task.sleep(for: .milliseconds(5))
            default:
                return try result.get()
            }
        }
    }

    private func enqueue(_ record: KafkaRecord, pending: PendingDelivery) {
        let headers = rd_kafka_headers_new(record.headers.count)!
        for header in record.headers {
            if let value = header.value {
                value.withUnsafeBytes { _ = rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
            } else {
                _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
            }
        }
        let opaque = Unmanaged.passRetained(pending).toOpaque()
        let result = Self.withOptionalBytes(record.key) { key in
            Self.withOptionalBytes(record.value) { value in
                purger_produce(
                    handle.pointer, record.topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                    key.baseAddress, key.count, value.baseAddress, value.count, headers, opaque)
            }
        }
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_headers_destroy(headers)
            Unmanaged<PendingDelivery>.fromOpaque(opaque).release()
            pending.finish(.failure(KafkaError(result)))
        }
    }

    private static func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return bytes.withUnsafeBytes(body)
    }

    /// Waits until every queued message is delivered or `timeout` passes; returns the number still undelivered.
    @discardableResult
    public func flush(timeout: Duration) async -> Int {
        let handle = self.handle
        return await withCheckedContinuation { continuation in
            blockingQueue.async {
                _ = rd_kafka_flush(handle.pointer, Int32(clamping: timeout.milliseconds))
                continuation.resume(returning: Int(rd_kafka_outq_len(handle.pointer)))
            }
        }
    }

    /// Delivers what it can within `timeout`, fails every send still waiting (so no caller hangs), and stops
    /// the delivery thread. The producer cannot be used afterwards.
    public func close(timeout: Duration = .seconds(10)) async {
        let remaining = await flush(timeout: timeout)
        if remaining > 0 {
            context.logger.warning("Producer closed with undelivered messages", metadata: ["count": "\(remaining)"])
            rd_kafka_purge(handle.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            await flush(timeout: .seconds(1))
        }
        guard !poller.stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let stopped = poller.stopped
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            blockingQueue.async {
                stopped.wait()
                continuation.resume()
            }
        }
    }

    /// The last asynchronous client error, such as all brokers being down.
    public var lastError: KafkaError? { context.lastError }
}

/// The delivery-report thread's stop flag and its exit signal.
private final class DeliveryPoller: Sendable {
    let stopping = Atomic<Bool>(false)
    let stopped = DispatchSemaphore(value: 0)
}

/// One send waiting for its delivery report; retained by librdkafka's per-message opaque until then.
private final class PendingDelivery: Sendable {
    private let state = Mutex<State>(.waiting(nil))

    private enum State {
        case waiting(CheckedContinuation<Result<DeliveryReport, KafkaError>, Never>?)
        case finished
    }

    /// Takes the continuation to resume; `false` (and the continuation resumed with `interrupted`) when the send
    /// was cancelled before it could be enqueued.
    func install(_ continuation: CheckedContinuation<Result<DeliveryReport, KafkaError>, Never>) -> Bool {
        let installed = state.withLock { state in
            guard case .waiting = state else { return false }
            state = .waiting(continuation)
            return true
        }
        if !installed { continuation.resume(returning: .failure(.interrupted)) }
        return installed
    }

    /// Resumes the waiting sender once; later calls (a delivery report after a cancellation) do nothing.
    func finish(_ result: Result<DeliveryReport, KafkaError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<DeliveryReport, KafkaError>, Never>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .finished
            return continuation
        }
        continuation?.resume(returning: result)
    }
}
