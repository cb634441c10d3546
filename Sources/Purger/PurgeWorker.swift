public import DatoCMS
import Foundation
public import Kafka
public import Logging
public import ServiceLifecycle
import Synchronization

/// The purge pipeline as a service: consumes deletion requests, submits bulk operations, publishes completion
/// events and stores each request's offset only once everything it carries is reported (at-least-once).
///
/// `run()` returns after a graceful shutdown (pending ids submitted, in-flight jobs finished within
/// `shutdownTimeout`, offsets committed, group left) and throws ``WorkerError/tokenRejected(_:)`` when the API
/// refuses the token: then it stops consuming, stores no offset past unfinished work, and leaves.
public final class PurgeWorker: Service, Sendable {
    /// What the worker needs from the configuration, already validated.
    public struct Settings: Sendable {
        /// The broker list.
        public var bootstrapServers: String
        /// The consumer group.
        public var groupID: String
        /// librdkafka properties passed through to both clients.
        public var kafkaProperties: [String: String]
        /// Input, results and dead-letter topics.
        public var requestsTopic: String
        /// See ``requestsTopic``.
        public var resultsTopic: String
        /// See ``requestsTopic``.
        public var dlqTopic: String
        /// Ids per bulk operation.
        public var batchMaxSize: Int
        /// Longest wait of an id for its batch to fill.
        public var batchMaxWait: Duration
        /// Submitted jobs not yet completed above which partitions are paused.
        public var maxInFlightJobs: Int
        /// Drain budget on shutdown and on revocation.
        public var shutdownTimeout: Duration
        /// The environment of requests that name none (`nil` = primary).
        public var defaultEnvironment: String?
        /// How often librdkafka reports consumer lag.
        public var statisticsInterval: Duration

        /// Settings from a validated configuration, for `run`.
        public init(configuration: PurgerConfiguration, bootstrapServers: String) {
            self.bootstrapServers = bootstrapServers
            groupID = configuration.kafkaGroupID
            kafkaProperties = configuration.kafkaProperties
            requestsTopic = configuration.requestsTopic
            resultsTopic = configuration.resultsTopic
            dlqTopic = configuration.dlqTopic
            batchMaxSize = configuration.batchMaxSize
            batchMaxWait = configuration.batchMaxWait
            maxInFlightJobs = configuration.maxInFlightJobs
            shutdownTimeout = configuration.shutdownTimeout
            defaultEnvironment = configuration.datocmsEnvironment
            statisticsInterval = .seconds(5)
        }
    }

    private enum Work: Sendable {
        case job(BulkOperation)
        case deadLetter(KafkaMessage, DeadLetter)
    }

    private let settings: Settings
    private let client: CMAClient
    private let logger: Logger
    private let metrics = PurgerMetrics()
    private let state: Mutex<PipelineState>
    private let control = Mutex(Control())

    private struct Control {
        var stopRequested = false
        var closing = false
        var fatal: WorkerError?
        var consumer: KafkaConsumer?
        var work: AsyncStream<Work>.Continuation?
        var apiReachable = false
    }

    /// Makes a worker; it connects when run.
    public init(settings: Settings, client: CMAClient, logger: Logger) {
        self.settings = settings
        self.client = client
        self.logger = logger
        self.state = Mutex(
            PipelineState(
                batcher: Batcher(
                    maxSize: settings.batchMaxSize, maxWait: settings.batchMaxWait,
                    defaultEnvironment: settings.defaultEnvironment)))
    }

    // MARK: - Health

    /// The consume loop is running and has not failed.
    public var isAlive: Bool { control.withLock { !$0.closing && $0.fatal == nil && $0.consumer != nil } }

    /// The worker owns partitions and the API has answered.
    public var isReady: Bool {
        let apiReachable = control.withLock { $0.apiReachable }
        return isAlive && apiReachable && !state.withLock { $0.assigned.isEmpty }
    }

    // MARK: - Observation

    /// Submitted bulk operations whose completion event is not acknowledged yet. Read-only, for tests and
    /// diagnostics; a snapshot that may change at once.
    public var inFlightCount: Int { state.withLock { $0.inFlightCount } }

    /// Ids waiting in pending batches over all environments (at most the batch size per environment). Read-only,
    /// for tests and diagnostics.
    public var pendingCount: Int { state.withLock { $0.pendingCount } }

    /// Partitions this member has paused for backpressure. Read-only, for tests and diagnostics.
    public var pausedPartitionCount: Int { state.withLock { $0.paused.count } }

    /// Partitions this member owns now. Read-only, for tests and diagnostics.
    public var assignedPartitionCount: Int { state.withLock { $0.assigned.count } }

    // MARK: - Running

    public func run() async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: settings.bootstrapServers, properties: settings.kafkaProperties),
            logger: logger)
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: settings.bootstrapServers, groupID: settings.groupID,
                properties: settings.kafkaProperties, statisticsInterval: settings.statisticsInterval),
            logger: logger
        ) { [self] event in await rebalanced(event) }
        let (work, sink) = AsyncStream.makeStream(of: Work.self)
        control.withLock {
            $0.consumer = consumer
            $0.work = sink
        }
        try consumer.subscribe(topics: [settings.requestsTopic])
        logger.info(
            "Worker started",
            metadata: ["topic": "\(settings.requestsTopic)", "group": "\(settings.groupID)"])

        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.checkAPI() }
                group.addTask { await self.consume(from: consumer, into: sink) }
                for await item in work {
                    group.addTask { await self.perform(item, producer: producer, consumer: consumer) }
                }
                if !(await drained(within: settings.shutdownTimeout)) {
                    logger.warning(
                        "Shutdown budget spent with jobs in flight; their requests stay uncommitted",
                        metadata: ["in_flight": "\(state.withLock { $0.inFlightCount })"])
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            self.control.withLock { $0.stopRequested = true }
        }

        let fatal = control.withLock {
            $0.closing = true
            return $0.fatal
        }
        storeCommittable(consumer: consumer, in: nil)
        do {
            try await consumer.commit()
        } catch {
            logger.warning("Final commit failed", metadata: ["error": "\(error)"])
        }
        await consumer.close(timeout: settings.shutdownTimeout)
        await producer.close(timeout: .seconds(5))
        control.withLock {
            $0.consumer = nil
            $0.work = nil
        }
        if let fatal {
            logger.error("Worker stopped", metadata: ["error": "\(fatal)"])
            throw fatal
        }
        logger.info("Worker stopped")
    }

    /// One cheap request at start-up: proves the API answers (readiness) and fails fast on a rejected token.
    private func checkAPI() async {
        do {
            try await client.ping(environment: settings.defaultEnvironment)
            control.withLock { $0.apiReachable = true }
        } catch {
            if error.kind == .fatal { fail(.tokenRejected(error)) }
            logger.warning("The DatoCMS API did not answer", metadata: ["error": "\(error)"])
        }
    }

    private var shouldStop: Bool { control.withLock { $0.stopRequested || $0.fatal != nil } }

    private func fail(_ error: WorkerError) {
        control.withLock { if $0.fatal == nil { $0.fatal = error } }
    }

    // MARK: - Consuming

    private func consume(from consumer: KafkaConsumer, into sink: AsyncStream<Work>.Continuation) async {
        var lastLagReport = ContinuousClock.now
        // Cancellation (the service group cancelling its services) stops at once: nothing pending is submitted.
        while !shouldStop, !Task.isCancelled {
            let now = ContinuousClock.now
            let untilDue = state.withLock { $0.nextDeadline }.map { max(.milliseconds(1), $0 - now) }
            let messages: [KafkaMessage]
            do {
                messages = try await consumer.poll(
                    maxMessages: 200, timeout: min(.milliseconds(100), untilDue ?? .milliseconds(100)))
            } catch {
                fail(.kafka(error))
                break
            }
            let wallNow = Date()
            let afterPoll = ContinuousClock.now
            for message in messages {
                metrics.requestsConsumed.increment()
                switch state.withLock({ $0.accept(message, now: afterPoll, wallNow: wallNow) }) {
                case .batched(let operations):
                    for operation in operations { sink.yield(.job(operation)) }
                case .deadLetter(let deadLetter):
                    metrics.invalidRequest(code: deadLetter.code.rawValue)
                    sink.yield(.deadLetter(message, deadLetter))
                case .duplicate:
                    break
                }
            }
            for operation in state.withLock({ $0.flushDue(now: afterPoll) }) { sink.yield(.job(operation)) }
            applyBackpressure(consumer)
            if afterPoll - lastLagReport > .seconds(1) {
                metrics.consumerLag(consumer.consumerLag)
                lastLagReport = afterPoll
            }
        }
        if control.withLock({ $0.fatal == nil }), !Task.isCancelled {
            for operation in state.withLock({ $0.flushAll() }) { sink.yield(.job(operation)) }
        }
        sink.finish()
    }

    private func applyBackpressure(_ consumer: KafkaConsumer) {
        let (pause, resume, inFlight, paused) = state.withLock { state in
            let change = state.backpressure(maxInFlight: settings.maxInFlightJobs)
            return (change.pause, change.resume, state.inFlightCount, state.paused.count)
        }
        do {
            try consumer.pause(pause)
            try consumer.resume(resume)
        } catch {
            logger.warning("Pausing or resuming partitions failed", metadata: ["error": "\(error)"])
        }
        if !pause.isEmpty { logger.debug("Partitions paused", metadata: ["in_flight": "\(inFlight)"]) }
        metrics.inFlightJobs.record(inFlight)
        metrics.pausedPartitions.record(paused)
    }

    /// Waits until no job is in flight, or `budget` passes; true when drained.
    private func drained(within budget: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: budget)
        while state.withLock({ $0.inFlightCount }) > 0 {
            if control.withLock({ $0.fatal != nil }) || Task.isCancelled || ContinuousClock.now >= deadline {
                return false
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    // MARK: - Performing

    private func perform(_ work: Work, producer: KafkaProducer, consumer: KafkaConsumer) async {
        switch work {
        case .job(let operation):
            await submit(operation, producer: producer, consumer: consumer)
        case .deadLetter(let message, let deadLetter):
            do {
                try await publishDeadLetter(message, deadLetter, producer: producer)
                state.withLock { state in
                    store(state.deadLetterAcknowledged(deadLetter.source), consumer: consumer, state: &state)
                }
            } catch {
                fail(.kafka(error))
            }
        }
    }

    private func submit(_ operation: BulkOperation, producer: KafkaProducer, consumer: KafkaConsumer) async {
        metrics.batchesSubmitted.increment()
        metrics.batchSize.record(operation.uploadIDs.count)
        var logger = self.logger
        logger[metadataKey: "batch_id"] = "\(operation.batchID)"
        logger[metadataKey: "environment"] = "\(operation.environment ?? "(primary)")"
        let outcome: BulkDestroyOutcome
        do {
            outcome = try await client.destroyUploads(operation.uploadIDs, environment: operation.environment)
        } catch {
            state.withLock { $0.batchAbandoned(operation.batchID) }
            if error.kind == .fatal { fail(.tokenRejected(error)) }
            logger.error("Bulk operation failed", metadata: ["error": "\(error)"])
            return
        }
        guard !Task.isCancelled else {
            state.withLock { $0.batchAbandoned(operation.batchID) }
            return
        }
        control.withLock { $0.apiReachable = true }
        logger[metadataKey: "job_id"] = "\(outcome.jobIDs.first.map(\.rawValue) ?? "-")"
        let (requests, held) = state.withLock { $0.finish(operation.batchID) }
        do {
            let event = try CompletionEvent(
                operation: operation, requests: requests, status: CompletionEvent.Status(outcome.status),
                jobID: outcome.jobIDs.first?.rawValue, jobStatus: outcome.jobStatus, successful: outcome.successful,
                failed: outcome.failed, failedUploadIDs: outcome.failedUploadIDs, error: outcome.error,
                attempts: outcome.attempts, polls: outcome.polls, submittedAt: outcome.submittedAt,
                completedAt: outcome.completedAt)
            try await publish(
                KafkaRecord(
                    topic: settings.resultsTopic, key: Array(operation.batchID.description.utf8),
                    value: event.jsonBytes()),
                producer: producer)
            if outcome.status == .timedOut {
                for message in held.map(\.message) {
                    try await publishDeadLetter(
                        message,
                        DeadLetter.jobTimeout(
                            batch: operation.batchID, jobID: outcome.jobIDs.first?.rawValue,
                            timeout: client.configuration.jobTimeout, source: message.sourcePosition),
                        producer: producer)
                }
            }
        } catch let error as KafkaError {
            fail(.kafka(error))
            return
        } catch {
            fail(.internalInconsistency("\(error)"))
            return
        }
        metrics.uploadsSuccessful.increment(by: outcome.successful)
        metrics.uploadsFailed.increment(by: outcome.failed)
        metrics.completion(status: outcome.status.rawValue)
        for requestedAt in held.compactMap(\.requestedAt) {
            metrics.endToEnd(since: requestedAt, until: outcome.completedAt)
        }
        logger.debug(
            "Bulk operation reported",
            metadata: ["status": "\(outcome.status.rawValue)", "successful": "\(outcome.successful)"])
        state.withLock { state in
            store(state.batchAcknowledged(operation.batchID), consumer: consumer, state: &state)
        }
    }

    /// Sends `message` unchanged to the dead-letter topic with the reason in headers. A value too large for the
    /// dead-letter topic (a request far above 1 MiB) goes without its value and with a `purger.value.omitted`
    /// header giving its size, rather than stopping the worker on a message it could never deliver.
    private func publishDeadLetter(
        _ message: KafkaMessage, _ deadLetter: DeadLetter, producer: KafkaProducer
    ) async throws(KafkaError) {
        metrics.deadLetters.increment()
        let headers = deadLetter.headers.map { KafkaHeader(name: $0.key, value: $0.value) }
        do {
            try await publish(
                KafkaRecord(topic: settings.dlqTopic, key: message.key, value: message.value, headers: headers),
                producer: producer)
        } catch  where error.code == .messageSizeTooLarge {
            logger.warning(
                "Dead letter too large for its topic; sent without its value",
                metadata: ["bytes": "\(message.value?.count ?? 0)", "offset": "\(message.offset)"])
            try await publish(
                KafkaRecord(
                    topic: settings.dlqTopic, key: message.key, value: nil,
                    headers: headers + [KafkaHeader(name: "purger.value.omitted", text: "\(message.value?.count ?? 0)")]
                ),
                producer: producer)
        }
    }

    /// How often a record whose delivery failed with a retriable error is sent again before the worker gives up.
    static let maximumResends = 3

    /// Sends `record` until the broker acknowledges it, sending it again (after a short pause) when delivery
    /// failed with a retriable error: a transient broker fault must not stop the worker. A resend may publish the
    /// record twice, never lose it (at-least-once). Other errors, and the last retriable one, are thrown.
    private func publish(_ record: KafkaRecord, producer: KafkaProducer) async throws(KafkaError) {
        var resends = 0
        while true {
            do {
                _ = try await producer.send(record)
                return
            } catch  where error.isRetriable && !error.isFatal && resends < Self.maximumResends && !Task.isCancelled {
                resends += 1
                logger.warning(
                    "Publishing failed; sending again",
                    metadata: ["topic": "\(record.topic)", "error": "\(error)", "resend": "\(resends)"])
                try? await Task.sleep(for: .milliseconds(200 * resends))
            }
        }
    }

    // MARK: - Offsets

    /// Hands `offsets` to the consumer while the state is locked, so stores never go backwards.
    private func store(
        _ offsets: [TopicPartition: Int64], consumer: KafkaConsumer, state: inout PipelineState
    ) {
        let owned = offsets.filter { state.assigned.contains($0.key) }
        guard !owned.isEmpty else { return }
        do {
            try consumer.storeOffsets(owned)
            state.offsetsStored(owned)
        } catch {
            logger.debug("Storing offsets failed", metadata: ["error": "\(error)"])
        }
    }

    private func storeCommittable(consumer: KafkaConsumer, in partitions: Set<TopicPartition>?) {
        state.withLock { state in
            store(state.committable(in: partitions ?? state.assigned), consumer: consumer, state: &state)
        }
    }

    // MARK: - Rebalancing

    private func rebalanced(_ event: RebalanceEvent) async {
        switch event {
        case .assigned(let partitions):
            state.withLock { $0.assign(partitions) }
        case .revoked(let partitions, let lost):
            let revoked = Set(partitions)
            let (consumer, sink, closing) = control.withLock { ($0.consumer, $0.work, $0.closing || $0.fatal != nil) }
            if !lost, !closing, let consumer {
                for operation in state.withLock({ $0.flushAll() }) { sink?.yield(.job(operation)) }
                let deadline = ContinuousClock.now.advanced(by: settings.shutdownTimeout)
                while state.withLock({ $0.outstanding(in: revoked) }) > 0, ContinuousClock.now < deadline,
                    control.withLock({ $0.fatal == nil })
                {
                    try? await Task.sleep(for: .milliseconds(20))
                }
                storeCommittable(consumer: consumer, in: revoked)
                do {
                    try await consumer.commit()
                } catch {
                    logger.warning("Commit on revocation failed", metadata: ["error": "\(error)"])
                }
            }
            state.withLock { $0.revoke(revoked) }
        }
    }
}

/// Why the worker stopped with an error.
public enum WorkerError: Error, Sendable, CustomStringConvertible {
    /// The API refused the token (401/403).
    case tokenRejected(CMAError)
    /// Kafka failed in a way the worker cannot work around (a fatal client error, an undeliverable result).
    case kafka(KafkaError)
    /// The worker's own bookkeeping disagreed with itself; a bug.
    case internalInconsistency(String)

    public var description: String {
        switch self {
        case .tokenRejected(let error): "the DatoCMS API rejected the token: \(error)"
        case .kafka(let error): "Kafka failed: \(error)"
        case .internalInconsistency(let message): "internal inconsistency: \(message)"
        }
    }
}

extension KafkaMessage {
    /// Where this message came from, as the pipeline names it.
    var sourcePosition: SourcePosition {
        SourcePosition(topic: topicPartition.topic, partition: topicPartition.partition, offset: offset)
    }
}

extension CompletionEvent.Status {
    init(_ status: BulkDestroyOutcome.Status) {
        switch status {
        case .completed: self = .completed
        case .rejected: self = .rejected
        case .timedOut: self = .timedOut
        }
    }
}
