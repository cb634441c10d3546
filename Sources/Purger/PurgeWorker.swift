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

    private let settings: Settings
    private let client: CMAClient
    private let logger: Logger
    private let metrics = PurgerMetrics()
    /// A copy of the machine's observable state after every event, for health checks and tests; the machine
    /// itself belongs to the loop in ``run()``.
    private let observed = Mutex(Observation())

    /// What health checks and tests read.
    private struct Observation {
        var consuming = false
        var apiAnswered = false
        var assigned = 0
        var paused = 0
        var runningJobs = 0
        var publishing = 0
        var pendingIDs = 0
        var peakRunningJobs = 0
    }

    /// Makes a worker; it connects when run.
    public init(settings: Settings, client: CMAClient, logger: Logger) {
        self.settings = settings
        self.client = client
        self.logger = logger
    }

    // MARK: - Health and observation

    /// The consume loop is running and has not failed.
    public var isAlive: Bool { observed.withLock { $0.consuming } }

    /// The worker owns partitions and the API has answered.
    public var isReady: Bool { observed.withLock { $0.consuming && $0.apiAnswered && $0.assigned > 0 } }

    /// Submitted bulk operations whose completion event is not acknowledged yet. A snapshot, for tests and
    /// diagnostics.
    public var inFlightCount: Int { observed.withLock { $0.runningJobs + $0.publishing } }

    /// The most jobs that were ever submitted and not finished at once (never above the configured bound).
    public var peakRunningJobs: Int { observed.withLock { $0.peakRunningJobs } }

    /// Ids waiting in pending batches over all environments. A snapshot, for tests and diagnostics.
    public var pendingCount: Int { observed.withLock { $0.pendingIDs } }

    /// Partitions this member has paused. A snapshot, for tests and diagnostics.
    public var pausedPartitionCount: Int { observed.withLock { $0.paused } }

    /// Partitions this member owns now. A snapshot, for tests and diagnostics.
    public var assignedPartitionCount: Int { observed.withLock { $0.assigned } }

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
            logger: logger, revocations: .byApplication)
        try consumer.subscribe(topics: [settings.requestsTopic])
        logger.info(
            "Worker started",
            metadata: ["topic": "\(settings.requestsTopic)", "group": "\(settings.groupID)"])
        observed.withLock { $0.consuming = true }

        let fatal = await work(consumer: consumer, producer: producer)

        observed.withLock { $0.consuming = false }
        await consumer.close(timeout: settings.shutdownTimeout)
        await producer.close(timeout: .seconds(5))
        if let fatal {
            logger.error("Worker stopped", metadata: ["error": "\(fatal)"])
            throw fatal
        }
        logger.info("Worker stopped")
    }

    /// The loop: every child task (a poll, a job, a publication, a commit, the shutdown signal) ends with one
    /// event; the machine turns each event into actions, carried out here. Returns the machine's verdict.
    private func work(consumer: KafkaConsumer, producer: KafkaProducer) async -> WorkerError? {
        var machine = PipelineStateMachine(
            configuration: PipelineStateMachine.Configuration(
                maxInFlightJobs: settings.maxInFlightJobs, shutdownTimeout: settings.shutdownTimeout,
                jobTimeout: client.configuration.jobTimeout),
            batcher: Batcher(
                maxSize: settings.batchMaxSize, maxWait: settings.batchMaxWait,
                defaultEnvironment: settings.defaultEnvironment))
        return await withTaskGroup(of: PipelineStateMachine.Event?.self) { group in
            group.addTask { await self.checkAPI() }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    return .stopRequested
                } catch {
                    return .cancelled
                }
            }
            group.addTask { await self.poll(consumer, until: nil) }
            var lastLagReport = ContinuousClock.now
            while let next = await group.next() {
                guard let event = next else { continue }
                let now = ContinuousClock.now
                if case .consumed(let events, _) = event {
                    metrics.requestsConsumed.increment(
                        by: events.count { if case .message = $0 { true } else { false } })
                    if now - lastLagReport > .seconds(1) {
                        metrics.consumerLag(consumer.consumerLag)
                        lastLagReport = now
                    }
                }
                let actions = machine.handle(event, now: now)
                observe(machine)
                for action in actions {
                    if case .finish(let error) = action {
                        if machine.runningJobs > 0 {
                            logger.warning(
                                "Stopping with jobs in flight; their requests stay uncommitted",
                                metadata: ["in_flight": "\(machine.runningJobs)"])
                        }
                        group.cancelAll()
                        return error
                    }
                    perform(action, in: &group, consumer: consumer, producer: producer)
                }
                if case .consumed = event {
                    let deadline = machine.nextDeadline
                    group.addTask { await self.poll(consumer, until: deadline) }
                }
            }
            return nil
        }
    }

    private func observe(_ machine: PipelineStateMachine) {
        metrics.inFlightJobs.record(machine.runningJobs)
        metrics.pausedPartitions.record(machine.paused.count)
        observed.withLock {
            $0.apiAnswered = machine.apiAnswered
            $0.assigned = machine.assigned.count
            $0.paused = machine.paused.count
            $0.runningJobs = machine.runningJobs
            $0.publishing = machine.publishingBatches
            $0.pendingIDs = machine.pendingIDs
            $0.peakRunningJobs = machine.peakRunningJobs
        }
    }

    private func perform(
        _ action: PipelineStateMachine.Action, in group: inout TaskGroup<PipelineStateMachine.Event?>,
        consumer: KafkaConsumer, producer: KafkaProducer
    ) {
        switch action {
        case .submit(let operation):
            metrics.batchesSubmitted.increment()
            metrics.batchSize.record(operation.uploadIDs.count)
            group.addTask { await self.submit(operation) }
        case .publish(let publication):
            group.addTask { await self.publish(publication, producer: producer) }
        case .deadLetter(let message, let deadLetter):
            metrics.invalidRequest(code: deadLetter.code.rawValue)
            group.addTask {
                do throws(KafkaError) {
                    try await self.publishDeadLetter(message, deadLetter, producer: producer)
                    return .deadLettered(deadLetter.source)
                } catch {
                    return .publishFailed(error)
                }
            }
        case .storeOffsets(let offsets):
            do {
                try consumer.storeOffsets(offsets)
            } catch {
                logger.debug("Storing offsets failed", metadata: ["error": "\(error)"])
            }
        case .pause(let partitions):
            do {
                try consumer.pause(partitions)
                logger.debug("Partitions paused", metadata: ["partitions": "\(partitions.count)"])
            } catch {
                logger.warning("Pausing partitions failed", metadata: ["error": "\(error)"])
            }
        case .resume(let partitions):
            do {
                try consumer.resume(partitions)
            } catch {
                logger.warning("Resuming partitions failed", metadata: ["error": "\(error)"])
            }
        case .commit:
            group.addTask {
                do throws(KafkaError) {
                    try await consumer.commit()
                    return .committed(nil)
                } catch {
                    self.logger.warning("Commit failed", metadata: ["error": "\(error)"])
                    return .committed(error)
                }
            }
        case .completeRevocation(let partitions):
            group.addTask {
                await consumer.completeRevocation(partitions)
                return nil
            }
        case .finish:
            preconditionFailure("finish is carried out by the loop")
        }
    }

    /// One poll, waiting until the machine's next deadline at the latest (and 100 ms at most, so that shutdown
    /// and rebalances are served promptly).
    private func poll(_ consumer: KafkaConsumer, until deadline: ContinuousClock.Instant?) async
        -> PipelineStateMachine.Event
    {
        let untilDue = deadline.map { max(.milliseconds(1), $0 - ContinuousClock.now) } ?? .milliseconds(100)
        do {
            let events = try await consumer.pollEvents(maxMessages: 200, timeout: min(.milliseconds(100), untilDue))
            return .consumed(events, wallNow: Date())
        } catch {
            return .failed(.kafka(error))
        }
    }

    /// One cheap request at start-up: proves the API answers (readiness) and fails fast on a rejected token.
    private func checkAPI() async -> PipelineStateMachine.Event? {
        do {
            try await client.ping(environment: settings.defaultEnvironment)
            return .apiAnswered
        } catch {
            if error.kind == .fatal { return .failed(.tokenRejected(error)) }
            logger.warning("The DatoCMS API did not answer", metadata: ["error": "\(error)"])
            return nil
        }
    }

    // MARK: - Jobs and publications

    private func submit(_ operation: BulkOperation) async -> PipelineStateMachine.Event {
        do {
            let outcome = try await client.destroyUploads(operation.uploadIDs, environment: operation.environment)
            return .jobFinished(operation.batchID, outcome)
        } catch {
            if error.kind == .fatal || !Task.isCancelled {
                logger.error(
                    "Bulk operation failed", metadata: ["batch_id": "\(operation.batchID)", "error": "\(error)"])
            }
            return .jobFailed(operation.batchID, error)
        }
    }

    private func publish(
        _ publication: PipelineStateMachine.Publication, producer: KafkaProducer
    ) async -> PipelineStateMachine.Event {
        let event = publication.event
        let outcome = publication.outcome
        do {
            try await publish(
                KafkaRecord(
                    topic: settings.resultsTopic, key: Array(event.batchID.description.utf8), value: event.jsonBytes()),
                producer: producer)
            for (message, deadLetter) in publication.deadLetters {
                try await publishDeadLetter(message, deadLetter, producer: producer)
            }
        } catch {
            return .publishFailed(error)
        }
        metrics.uploadsSuccessful.increment(by: outcome.successful)
        metrics.uploadsFailed.increment(by: outcome.failed)
        metrics.completion(status: outcome.status.rawValue)
        for requestedAt in publication.requestedAt {
            metrics.endToEnd(since: requestedAt, until: outcome.completedAt)
        }
        logger.debug(
            "Bulk operation reported",
            metadata: [
                "batch_id": "\(event.batchID)", "job_id": "\(event.jobID ?? "-")",
                "status": "\(outcome.status.rawValue)", "successful": "\(outcome.successful)",
            ])
        return .published(publication.batchID)
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
