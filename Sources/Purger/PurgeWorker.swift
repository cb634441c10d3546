public import DatoCMS
import Foundation
import Kafka
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
    /// What the worker runs with: the validated configuration and the broker list `run` requires.
    public struct Settings: Sendable {
        /// The validated configuration.
        public var configuration: PurgerConfiguration
        /// The broker list.
        public var bootstrapServers: String
        /// How often librdkafka reports statistics: consumer lag, and whether the member is rejoining its group
        /// (no commit starts then, see ``PipelineStateMachine``), which is why it is this often.
        public var statisticsInterval: Duration = .milliseconds(250)

        /// Settings from a validated configuration, for `run`.
        public init(configuration: PurgerConfiguration, bootstrapServers: String) {
            self.configuration = configuration
            self.bootstrapServers = bootstrapServers
        }
    }

    private let settings: Settings
    var configuration: PurgerConfiguration { settings.configuration }
    let client: CMAClient
    let logger: Logger
    let metrics = PurgerMetrics()
    /// A copy of the machine's observable state after every event, for health checks and tests; the machine
    /// itself belongs to the loop in ``run()``.
    let observed = Mutex(Observation())

    /// Makes a worker; it connects when run.
    public init(settings: Settings, client: CMAClient, logger: Logger) {
        self.settings = settings
        self.client = client
        self.logger = logger
    }

    // MARK: - Running

    public func run() async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: settings.bootstrapServers, properties: configuration.kafkaProperties),
            logger: logger)
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: settings.bootstrapServers, groupID: configuration.kafkaGroupID,
                // The worker commits itself (see PipelineStateMachine.Configuration.commitInterval); an operator may
                // still turn librdkafka's auto-commit back on.
                properties: ["enable.auto.commit": "false"].merging(configuration.kafkaProperties) { $1 },
                statisticsInterval: settings.statisticsInterval),
            logger: logger, revocations: .byApplication)
        try consumer.subscribe(topics: [configuration.requestsTopic])
        logger.info(
            "Worker started",
            metadata: ["topic": "\(configuration.requestsTopic)", "group": "\(configuration.kafkaGroupID)"])
        observed.withLock { $0.consuming = true }

        let fatal = await workWithPushConnection(consumer: consumer, producer: producer)

        observed.withLock { $0.consuming = false }
        // Both clients close at once, each within a few seconds: the work is over, leaving must not outlast the
        // shutdown budget by more than its documented margin.
        async let consumerClosed: Void = consumer.close(timeout: Self.closeTimeout)
        async let producerClosed: Void = producer.close(timeout: Self.closeTimeout)
        _ = await (consumerClosed, producerClosed)
        if let fatal {
            logger.error("Worker stopped", metadata: ["error": "\(fatal)"])
            throw fatal
        }
        logger.info("Worker stopped")
    }

    /// Runs the loop with the push connection beside it, as two services of a group of their own that stops the
    /// loop first: a graceful shutdown reaches every task under the worker's service, and swift-websocket closes
    /// its connection on one, so the push connection would go as the drain starts and the drain would poll every
    /// job it awaits. The group stops when the loop ends, drained or failed; cancelling the worker cancels both.
    private func workWithPushConnection(consumer: KafkaConsumer, producer: KafkaProducer) async -> WorkerError? {
        let verdict = Mutex<WorkerError?>(nil)
        let push = Stage { [client] in
            await cancelWhenGracefulShutdown { await client.runPushedResults() }
        }
        let loop = Stage {
            let error = await self.work(consumer: consumer, producer: producer)
            verdict.withLock { $0 = error }
        }
        let stages = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: push, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore),
                    .init(service: loop, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                logger: logger))
        // The group throws only when cancelled; the loop's verdict is what counts.
        try? await stages.run()
        return verdict.withLock { $0 }
    }

    /// The loop: every child task (a poll, a job, a publication, a commit, the shutdown signal) ends with one
    /// event; the machine turns each event into actions, carried out here. Returns the machine's verdict.
    private func work(consumer: KafkaConsumer, producer: KafkaProducer) async -> WorkerError? {
        var machine = PipelineStateMachine(
            configuration: PipelineStateMachine.Configuration(configuration, client: client.configuration),
            batcher: Batcher(
                maxSize: configuration.batchMaxSize, maxWait: configuration.batchMaxWait,
                defaultEnvironment: configuration.datocmsEnvironment))
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
                // Cancellation (a second signal, the service group giving up) stops at once, whatever else happened.
                let actions = machine.handle(Task.isCancelled ? .cancelled : event, now: now)
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

    private func perform(
        _ action: PipelineStateMachine.Action, in group: inout TaskGroup<PipelineStateMachine.Event?>,
        consumer: KafkaConsumer, producer: KafkaProducer
    ) {
        switch action {
        case .submit(let operation, let knownGone):
            metrics.batchesSubmitted.increment()
            metrics.batchSize.record(operation.uploadIDs.count)
            group.addTask { await self.submit(operation, knownGone: knownGone) }
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
        case .commit(let orphaned):
            group.addTask {
                do throws(KafkaError) {
                    try await consumer.commit()
                    if !orphaned.isEmpty {
                        try await consumer.commit(orphaned)
                        self.logger.info(
                            "Committed finished work of partitions now owned by another member",
                            metadata: ["partitions": "\(orphaned.keys.sorted())"])
                    }
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

    /// One cheap request at start-up: proves the API answers (readiness) and fails fast on a rejected token. Then
    /// subscribes the default environment's pushed job results, unless they are only polled; with
    /// `DATOCMS_JOB_RESULTS=push`, failing that stops the worker before it is ready.
    private func checkAPI() async -> PipelineStateMachine.Event? {
        do {
            try await client.ping(environment: configuration.datocmsEnvironment)
            let pushed = try await client.subscribePushChannel(environment: configuration.datocmsEnvironment)
            if !pushed, configuration.jobResults == .push {
                return .failed(.pushUnavailable(configuration.datocmsEnvironment ?? "the primary environment"))
            }
            return .apiAnswered
        } catch {
            if error.kind == .fatal { return .failed(.tokenRejected(error)) }
            logger.warning("The DatoCMS API did not answer", metadata: ["error": "\(error)"])
            return nil
        }
    }

    // MARK: - Jobs and publications

    private func submit(_ operation: BulkOperation, knownGone: Set<UploadID>) async -> PipelineStateMachine.Event {
        do {
            let outcome = try await client.destroyUploads(
                operation.uploadIDs, environment: operation.environment, knownGone: knownGone)
            return .jobFinished(operation.batchID, outcome, budget: BudgetUse(client.statistics))
        } catch {
            if error.kind == .fatal || !Task.isCancelled {
                logger.error(
                    "Bulk operation failed", metadata: ["batch_id": "\(operation.batchID)", "error": "\(error)"])
            }
            return .jobFailed(operation.batchID, error)
        }
    }
}

/// A body run as a service.
private struct Stage: Service {
    let body: @Sendable () async throws -> Void

    func run() async throws { try await body() }
}
