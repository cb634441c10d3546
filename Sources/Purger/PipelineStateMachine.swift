public import DatoCMS
public import Foundation
public import Kafka

/// The whole pipeline's state as one value: events in, actions out.
///
/// Messages become requests, requests become batches in the ``Batcher``, full or due batches wait in `ready` for
/// one of ``Configuration/maxInFlightJobs`` job slots, a finished job becomes a completion event to publish, an
/// acknowledged event finishes its requests, finished requests move their partition's offset, stored offsets are
/// committed. Revocations and the shutdown drain are states of the same machine, and they end with an action,
/// never by someone polling a count. The machine does no I/O and reads no clock: the worker hands it events with
/// the time they happened and carries out the actions it returns, in order.
///
/// Guarantees:
/// - at most ``inFlightLimit`` jobs are submitted and not finished, whatever arrives at once (a fixed bound, or the
///   ``InFlightLimiter``'s, never above ``Configuration/maxInFlightJobs``);
/// - an offset is stored only once every request below it has all its completion events (or its dead letter)
///   acknowledged; a fatal error or an exhausted budget never stores unfinished work;
/// - a revoked partition's finished work is stored and committed before its revocation completes, within the
///   revocation budget; a lost partition is forgotten at once;
/// - the drain on stop submits what is pending, waits for what runs within the budget, commits, and finishes.
public struct PipelineStateMachine: Sendable {
    /// The limits the machine works within.
    public struct Configuration: Sendable {
        /// Jobs submitted and not finished, at most (with `adaptive`, the most the limiter may allow).
        public var maxInFlightJobs: Int
        /// When set, the bound adapts within `1...maxInFlightJobs` (``InFlightLimiter``); else it is
        /// `maxInFlightJobs`.
        public var adaptive: InFlightLimiter.Configuration?
        /// Budget of a drain on stop and of a revocation.
        public var shutdownTimeout: Duration
        /// Timeout of a job, for the dead letters of timed-out requests.
        public var jobTimeout: Duration
        /// Dead letters sent and not acknowledged above which consumption pauses.
        public var maxPendingDeadLetters = 1000
        /// Pause before a commit the group refused because it was rebalancing is tried again, while a revocation
        /// waits for it (the member cannot rejoin before the revocation completes).
        public var commitRetryDelay: Duration = .milliseconds(100)
        /// Otherwise a commit the group refused because its membership is changing goes again when the member's
        /// next assignment ends the round, or after this long without one.
        public var commitRoundTimeout: Duration = .seconds(10)
        /// How long the last commit before finishing may take (while partitions reported lost may still come back,
        /// up to the end of the drain's budget).
        public var finalCommitTimeout: Duration = .seconds(5)
        /// The least time between two commits of finished work while nothing is being revoked or drained. Every
        /// commit can race a group rebalance: librdkafka 2.0.2 answers a commit sent while the member rejoins with
        /// `ILLEGAL_GENERATION` once the new generation forms, drops the whole assignment, and a second such loss
        /// can abort the process in its sticky assignor. So routine commits are as rare as librdkafka's own
        /// auto-commit (which the worker turns off, to be the only committer).
        public var commitInterval: Duration = .seconds(5)
        /// Upload ids confirmed gone remembered at most, so that a repeated request for one costs no API request;
        /// `0` remembers none.
        public var goneCacheCapacity: Int
        /// How long a confirmation that an id is gone is trusted.
        public var goneCacheMaximumAge: Duration

        /// Limits for a worker.
        public init(
            maxInFlightJobs: Int, adaptive: InFlightLimiter.Configuration? = nil, shutdownTimeout: Duration,
            jobTimeout: Duration, goneCacheCapacity: Int = 0, goneCacheMaximumAge: Duration = .zero
        ) {
            precondition(maxInFlightJobs >= 1, "at least one job slot")
            self.maxInFlightJobs = maxInFlightJobs
            self.adaptive = adaptive.map { adaptive in
                var bounded = adaptive
                bounded.maximum = min(adaptive.maximum, maxInFlightJobs)
                bounded.initial = min(adaptive.initial, bounded.maximum)
                return bounded
            }
            self.shutdownTimeout = shutdownTimeout
            self.jobTimeout = jobTimeout
            self.goneCacheCapacity = goneCacheCapacity
            self.goneCacheMaximumAge = goneCacheMaximumAge
        }
    }

    /// Where the pipeline is in its life.
    public enum Lifecycle: Sendable {
        /// Consuming and working.
        case running
        /// Stop requested: no new requests; pending ids submitted, running jobs awaited until `deadline`.
        case draining(deadline: ContinuousClock.Instant)
        /// The work is over (drained, budget spent or failed): the last commit runs until `deadline`; then the
        /// machine finishes with `error`.
        case finishing(error: WorkerError?, commit: Int, deadline: ContinuousClock.Instant)
        /// ``Action/finish(_:)`` was returned; every later event is ignored.
        case stopped
    }

    /// Something that happened, for ``handle(_:now:)``.
    public enum Event: Sendable {
        /// A poll of the consumer returned these messages and assignment changes, in order.
        case consumed([KafkaConsumerEvent], wallNow: Date)
        /// Time passed (the worker ticks at ``nextDeadline`` at the latest).
        case tick
        /// The API answered (readiness).
        case apiAnswered
        /// A submitted job ended with an outcome; `budget` is the API client's use of the token's budget so far
        /// (for the adaptive bound).
        case jobFinished(BatchID, BulkDestroyOutcome, budget: BudgetUse = BudgetUse())
        /// A submitted job ended without an outcome (the token was rejected, or the job was cancelled).
        case jobFailed(BatchID, CMAError)
        /// The broker acknowledged the completion event (and dead letters) of a batch.
        case published(BatchID)
        /// The broker acknowledged the dead letter of the request at a position.
        case deadLettered(SourcePosition)
        /// A completion event or dead letter could not be delivered.
        case publishFailed(KafkaError)
        /// The commit returned by ``Action/commit`` ended.
        case committed(KafkaError?)
        /// SIGTERM or SIGINT: drain and finish.
        case stopRequested
        /// Something the worker cannot go on after.
        case failed(WorkerError)
        /// The worker's task was cancelled: stop at once, submitting nothing more, storing what finished (closing the
        /// consumer commits it).
        case cancelled
    }

    /// What the worker must do, in the order returned.
    public enum Action: Sendable {
        /// Submit this bulk operation in a free job slot, without the ids of `knownGone` (confirmed gone a moment
        /// ago: they are not found); report ``Event/jobFinished(_:_:budget:)`` or ``Event/jobFailed(_:_:)``.
        case submit(BulkOperation, knownGone: Set<UploadID>)
        /// Publish a completion event (and its dead letters); report ``Event/published(_:)``.
        case publish(Publication)
        /// Send a message to the dead-letter topic; report ``Event/deadLettered(_:)``.
        case deadLetter(KafkaMessage, DeadLetter)
        /// Store these offsets (the next offset to consume per partition) for the next commit.
        case storeOffsets([TopicPartition: Int64])
        /// Stop fetching from these partitions (backpressure, drain).
        case pause(Set<TopicPartition>)
        /// Fetch from these partitions again.
        case resume(Set<TopicPartition>)
        /// Commit the stored offsets, and these offsets of partitions lost to another member with work this one
        /// finished (stored offsets are librdkafka's for owned partitions only); report ``Event/committed(_:)``.
        case commit(orphaned: [TopicPartition: Int64])
        /// Let these revoked partitions go.
        case completeRevocation(Set<TopicPartition>)
        /// Stop: cancel whatever still runs, close the clients; `nil` is a clean stop.
        case finish(WorkerError?)
    }

    /// A completion event ready to publish, with what the worker reports about it.
    public struct Publication: Sendable {
        /// The batch it reports.
        public var batchID: BatchID
        /// The event.
        public var event: CompletionEvent
        /// The job's outcome, for metrics.
        public var outcome: BulkDestroyOutcome
        /// Requests to send to the dead-letter topic after the event (a timed-out job's requests, for replay).
        public var deadLetters: [(message: KafkaMessage, deadLetter: DeadLetter)]
        /// The `requested_at` of the requests the event reports, for end-to-end latency.
        public var requestedAt: [Date]
    }

    /// A partition set being given up.
    struct Revocation: Sendable {
        var partitions: Set<TopicPartition>
        var deadline: ContinuousClock.Instant
        /// The commit whose landing completes the revocation, once its offsets are stored.
        var commit: Int?
    }

    /// Commits requested, started and landed, by sequence number: a waiter knows its commit has landed when
    /// `landed` reaches the number it was given.
    struct Commits: Sendable {
        var requested = 0
        var started = 0
        var landed = 0
        var running = false
        var retryAt: ContinuousClock.Instant?
        var refusals = 0
        /// When the last commit started, or the assignment last changed: routine commits wait a commit interval
        /// after either.
        var lastStartedAt: ContinuousClock.Instant?
        /// Whether a revocation or the finish waits for the requested commit (it then goes without delay).
        var urgent = false
        /// The orphaned offsets the running commit carries.
        var orphaned: [TopicPartition: Int64] = [:]
        /// Whether commits wait for the end of the group's round (the member's next assignment): one was refused,
        /// or the member is rejoining.
        var awaitingRound = false
        /// Whether commits waited for a round (the member was rejoining) since the last one landed.
        var heldForRound = false
    }

    /// How often a failed commit is tried again before it counts as done.
    static let maximumCommitRefusals = 600

    public let configuration: Configuration
    public private(set) var lifecycle: Lifecycle = .running
    private var batcher: Batcher
    private var ledger = RequestLedger()
    private var offsets = PartitionOffsets()
    private var held: [SourcePosition: HeldRequest] = [:]
    private var ready: [BulkOperation] = []
    /// Jobs submitted and not finished, with when they were submitted.
    private var running: [BatchID: (operation: BulkOperation, submittedAt: ContinuousClock.Instant)] = [:]
    /// The adaptive bound, when configured.
    public private(set) var limiter: InFlightLimiter?
    private var publishing: Set<BatchID> = []
    private var deadLettering: Set<SourcePosition> = []
    private var revocation: Revocation?
    /// Partitions whose assignment librdkafka reported lost, until the next assignment.
    private var limbo: Set<TopicPartition> = []
    /// Where finished work ends in partitions lost for good (the next assignment gave them to another member), to be
    /// committed explicitly: the group's offset would otherwise stay behind work whose events are published, and
    /// the next owner would do it again. Committing it never skips unfinished work, whoever owns the partition now.
    private var orphaned: [TopicPartition: Int64] = [:]
    /// The end of the drain's budget, once the drain is over: partitions lost during the last commit may come back
    /// until then.
    private var drainDeadline: ContinuousClock.Instant?
    private var commits = Commits()
    /// Ids confirmed gone a moment ago.
    private var gone: GoneCache
    /// The partitions this member owns now.
    public private(set) var assigned: Set<TopicPartition> = []
    /// The partitions this member has paused.
    public private(set) var paused: Set<TopicPartition> = []
    /// Whether the API has answered since start.
    public private(set) var apiAnswered = false
    /// The most jobs ever running at once.
    public private(set) var peakRunningJobs = 0
    /// The most ids ever waiting in pending batches at once.
    public private(set) var peakPendingIDs = 0
    /// How often consumption was paused.
    public private(set) var pauses = 0

    /// A machine with nothing assigned, batching as `batcher` is configured.
    public init(configuration: Configuration, batcher: Batcher) {
        self.configuration = configuration
        self.batcher = batcher
        self.gone = GoneCache(
            capacity: configuration.goneCacheCapacity, maximumAge: configuration.goneCacheMaximumAge)
        self.limiter = configuration.adaptive.map(InFlightLimiter.init)
    }

    // MARK: - Observation

    /// Jobs submitted and not finished.
    public var runningJobs: Int { running.count }
    /// Jobs allowed in flight now: the adaptive bound, or the fixed one.
    public var inFlightLimit: Int { limiter?.limit ?? configuration.maxInFlightJobs }

    /// The batches of the jobs submitted and not finished.
    public var runningBatchIDs: Set<BatchID> { Set(running.keys) }
    /// Batches flushed and waiting for a job slot.
    public var readyBatches: Int { ready.count }
    /// Completion events being published.
    public var publishingBatches: Int { publishing.count }
    /// Ids waiting in pending batches.
    public var pendingIDs: Int { batcher.pendingCount }

    /// The next instant at which a ``Event/tick`` has something to do: a batch falls due, a budget ends, a commit
    /// is retried.
    public var nextDeadline: ContinuousClock.Instant? {
        var deadlines: [ContinuousClock.Instant] = []
        if case .running = lifecycle, let due = batcher.nextDeadline() { deadlines.append(due) }
        if let revocation { deadlines.append(revocation.deadline) }
        if let retryAt = commits.retryAt { deadlines.append(retryAt) }
        if let nextCommit { deadlines.append(nextCommit) }
        switch lifecycle {
        case .draining(let deadline): deadlines.append(deadline)
        case .finishing(_, _, let deadline): deadlines.append(finishingDeadline(deadline))
        case .running, .stopped: break
        }
        return deadlines.min()
    }

    // MARK: - Events

    /// Takes `event`, which happened at `now`, and returns what to do about it, in order.
    public mutating func handle(_ event: Event, now: ContinuousClock.Instant) -> [Action] {
        if case .stopped = lifecycle { return [] }
        var actions: [Action] = []
        switch event {
        case .consumed(let events, let wallNow):
            for consumed in events { take(consumed, now: now, wallNow: wallNow, into: &actions) }
            if case .running = lifecycle { ready += batcher.flushDue(now: now) }
        case .tick:
            if case .running = lifecycle { ready += batcher.flushDue(now: now) }
        case .apiAnswered:
            apiAnswered = true
        case .jobFinished(let batch, let outcome, let budget):
            guard let (operation, submittedAt) = running.removeValue(forKey: batch) else { break }
            apiAnswered = true
            limiter?.jobFinished(hold: now - submittedAt, backlog: !ready.isEmpty, budget: budget, at: now)
            gone.record(outcome.goneIDs, environment: operation.environment, at: now)
            finished(operation, outcome, into: &actions, now: now)
        case .jobFailed(let batch, let error):
            guard running.removeValue(forKey: batch) != nil else { break }
            _ = batcher.completed(batch)
            if error.kind == .fatal { fail(.tokenRejected(error), now: now, into: &actions) }
        case .published(let batch):
            guard publishing.remove(batch) != nil else { break }
            for source in ledger.batchAcknowledged(batch) {
                held[source] = nil
                _ = offsets.markDone(source)
            }
            storeFinished(into: &actions)
        case .deadLettered(let source):
            guard deadLettering.remove(source) != nil else { break }
            _ = offsets.markDone(source)
            storeFinished(into: &actions)
        case .publishFailed(let error):
            fail(.kafka(error), now: now, into: &actions)
        case .committed(let error):
            commitEnded(error, now: now)
        case .stopRequested:
            guard case .running = lifecycle else { break }
            lifecycle = .draining(deadline: now.advanced(by: configuration.shutdownTimeout))
            ready += batcher.flushAll()
        case .failed(let error):
            fail(error, now: now, into: &actions)
        case .cancelled:
            // Nothing can be awaited any more (a commit would be cancelled too): store what finished, which closing
            // the consumer commits, and finish.
            storeFinished(into: &actions)
            lifecycle = .stopped
            actions.append(.finish(nil))
            return actions
        }
        advance(now: now, into: &actions)
        return actions
    }

    // MARK: - Consuming

    private mutating func take(
        _ event: KafkaConsumerEvent, now: ContinuousClock.Instant, wallNow: Date, into actions: inout [Action]
    ) {
        switch event {
        case .rebalance(.assigned(let partitions)):
            // Rebalances come in bursts (replicas starting or stopping one after another): routine commits keep
            // clear of the next round for a commit interval.
            commits.lastStartedAt = now
            // The round is over (librdkafka reports every one, with no partitions if nothing changed here): a
            // commit refused during it goes now, with the generation the round made.
            if commits.awaitingRound {
                commits.awaitingRound = false
                commits.retryAt = nil
            }
            // Partitions lost a moment ago and given back (a commit raced a rebalance, and librdkafka dropped the
            // assignment) keep their work: redelivered messages are recognised, finished ones are stored again.
            let returned = limbo.intersection(partitions)
            let lostForGood = limbo.subtracting(partitions)
            // Stored offsets went with the assignment: what was finished counts again, then the tracker forgets.
            offsets.markUnstored(lostForGood)
            let finished = offsets.committable.filter { lostForGood.contains($0.key) }
            // A partition back here is committed from what this member stores (an older orphaned offset would move
            // the group's offset back).
            for partition in partitions { orphaned[partition] = nil }
            orphaned.merge(finished) { max($0, $1) }
            forget(lostForGood)
            limbo = []
            offsets.revoke(Set(partitions).subtracting(returned))
            offsets.markUnstored(returned)
            assigned.formUnion(partitions)
            // librdkafka keeps a partition paused across a revocation and a new assignment (it keeps the pause on
            // its partition object), while the machine forgot the pause with the revocation: without this resume a
            // partition paused when it was revoked and then given back would stay paused until the next round of
            // backpressure, for ever if none comes. Resuming a partition that is not paused does nothing.
            let unpaused = Set(partitions).subtracting(paused)
            if !unpaused.isEmpty { actions.append(.resume(unpaused)) }
            if !finished.isEmpty { commits.requested += 1 }
            if !returned.isEmpty || !finished.isEmpty {
                storeFinished(into: &actions)
                if case .finishing(let error, _, let deadline) = lifecycle {
                    lifecycle = .finishing(error: error, commit: requestCommit(), deadline: deadline)
                }
            }
        case .rebalance(.revoked(let partitions, let lost)):
            commits.lastStartedAt = now
            let revoked = Set(partitions)
            if lost {
                // librdkafka let them go already. Their work is kept until the next assignment says whether they
                // come back; a revocation of them in progress has nothing left to complete.
                assigned.subtract(revoked)
                paused.subtract(revoked)
                limbo.formUnion(revoked)
                if var revocation {
                    revocation.partitions.subtract(revoked)
                    self.revocation = revocation.partitions.isEmpty ? nil : revocation
                }
            } else {
                // librdkafka waits for a revocation to complete before it starts another; merge defensively.
                let deadline = now.advanced(by: configuration.shutdownTimeout)
                // The round cannot end before the revocation completes, which waits for the commit.
                if commits.awaitingRound {
                    commits.awaitingRound = false
                    commits.retryAt = now.advanced(by: configuration.commitRetryDelay)
                }
                revocation = Revocation(
                    partitions: revoked.union(revocation?.partitions ?? []), deadline: revocation?.deadline ?? deadline)
                // Pending ids of the revoked partitions go out now rather than wait for their batch to fill.
                ready += batcher.flushAll()
            }
        case .rebalance(.rejoining):
            // A commit sent now would wait behind the member's JoinGroup and be answered for the generation that
            // ended, which librdkafka takes for a lost assignment, and its rejoin restarts the round for every
            // member: commits wait for the round to end, as a refused one does. Not during a revocation, which the
            // round waits for (and which commits with the generation that revokes).
            if revocation == nil, !commits.awaitingRound {
                commits.awaitingRound = true
                commits.heldForRound = true
                commits.retryAt = now.advanced(by: configuration.commitRoundTimeout)
            }
        case .message(let message):
            accept(message, now: now, wallNow: wallNow, into: &actions)
        }
    }

    private mutating func accept(
        _ message: KafkaMessage, now: ContinuousClock.Instant, wallNow: Date, into actions: inout [Action]
    ) {
        // Messages of partitions being given up, or arriving while draining, are left to the next consumer of their
        // partition: they are never tracked, so their offsets are never stored.
        guard case .running = lifecycle, assigned.contains(message.topicPartition),
            revocation?.partitions.contains(message.topicPartition) != true
        else { return }
        let source = message.sourcePosition
        guard offsets.track(source) else { return }
        switch DeletionRequest.decode(value: message.value, source: source) {
        case .failure(let invalid):
            deadLettering.insert(source)
            actions.append(.deadLetter(message, DeadLetter(invalid, source: source)))
        case .success(let request):
            let result = batcher.add(request, now: now, wallNow: wallNow)
            ready += result.flushed
            if ledger.record(source, waitingOn: result.dependsOn) {
                _ = offsets.markDone(source)
            } else {
                held[source] = HeldRequest(message: message, requestedAt: request.requestedAt)
            }
        }
    }

    // MARK: - Finishing batches

    private mutating func finished(
        _ operation: BulkOperation, _ outcome: BulkDestroyOutcome, into actions: inout [Action],
        now: ContinuousClock.Instant
    ) {
        let requests = batcher.completed(operation.batchID) ?? operation.requests
        let heldRequests = requests.compactMap { held[$0.source] }
        let event: CompletionEvent
        do {
            event = try CompletionEvent(operation: operation, requests: requests, outcome: outcome)
        } catch {
            fail(.internalInconsistency("\(error)"), now: now, into: &actions)
            return
        }
        let deadLetters: [(message: KafkaMessage, deadLetter: DeadLetter)] =
            outcome.status == .timedOut
            ? heldRequests.map { request in
                (
                    request.message,
                    DeadLetter.jobTimeout(
                        batch: operation.batchID, jobID: outcome.jobIDs.first?.rawValue,
                        timeout: configuration.jobTimeout, source: request.message.sourcePosition)
                )
            } : []
        publishing.insert(operation.batchID)
        actions.append(
            .publish(
                Publication(
                    batchID: operation.batchID, event: event, outcome: outcome, deadLetters: deadLetters,
                    requestedAt: heldRequests.compactMap(\.requestedAt))))
    }

    // MARK: - Offsets and commits

    /// Stores what finished in the partitions this member still owns, and asks for a commit so that finished work
    /// is committed as soon as it is finished.
    private mutating func storeFinished(into actions: inout [Action]) {
        let committable = offsets.committable.filter { assigned.contains($0.key) }
        guard !committable.isEmpty else { return }
        offsets.markCommitted(committable)
        actions.append(.storeOffsets(committable))
        commits.requested += 1
    }

    private mutating func commitEnded(_ error: KafkaError?, now: ContinuousClock.Instant) {
        commits.running = false
        if let error, !assigned.union(limbo).isEmpty || !orphaned.isEmpty,
            commits.refusals < Self.maximumCommitRefusals
        {
            // Refused while the group rebalances, or answered for a generation that has just ended: the same
            // offsets go again (stored again first if the partitions come back after a lost assignment).
            commits.refusals += 1
            commits.urgent = true
            if Self.refusedByRound(error), revocation == nil {
                // Not before the round ends: a commit sent while the member rejoins carries the generation that is
                // ending and is answered after the join with ILLEGAL_GENERATION, which librdkafka takes for a lost
                // assignment, and its rejoin restarts the round for every member (members stopped at once kept a
                // group rebalancing past their budget that way).
                commits.awaitingRound = true
                commits.retryAt = now.advanced(by: configuration.commitRoundTimeout)
            } else {
                let delay =
                    error.code == .rebalanceInProgress
                    ? configuration.commitRetryDelay : configuration.commitRetryDelay * 5
                commits.retryAt = now.advanced(by: delay)
            }
            commits.started = commits.landed
            return
        }
        commits.refusals = 0
        commits.heldForRound = false
        commits.landed = commits.started
        if error == nil {
            for (partition, offset) in commits.orphaned where orphaned[partition] == offset {
                orphaned[partition] = nil
            }
        }
        commits.orphaned = [:]
    }

    /// Whether a commit was refused because the group's membership is changing (a round is under way or has
    /// just made a new generation).
    private static func refusedByRound(_ error: KafkaError) -> Bool {
        [.rebalanceInProgress, .illegalGeneration, .unknownMemberID].contains(error.code)
    }

    private mutating func startCommit(now: ContinuousClock.Instant, into actions: inout [Action]) {
        // While partitions are reported lost, a commit would carry nothing of theirs: wait for the next assignment,
        // which gives them back (their offsets are stored again) or not.
        guard !commits.running, commits.requested > commits.started, limbo.isEmpty else { return }
        if let retryAt = commits.retryAt {
            guard now >= retryAt else { return }
            commits.retryAt = nil
            commits.awaitingRound = false
        }
        if !commits.urgent, let last = commits.lastStartedAt, now < last.advanced(by: configuration.commitInterval) {
            return
        }
        commits.running = true
        commits.urgent = false
        commits.started = commits.requested
        commits.lastStartedAt = now
        commits.orphaned = orphaned
        actions.append(.commit(orphaned: orphaned))
    }

    /// A commit, without delay, that will carry everything stored so far; returns its number.
    private mutating func requestCommit() -> Int {
        commits.requested += 1
        commits.urgent = true
        return commits.requested
    }

    /// When a commit of finished work held back by ``Configuration/commitInterval`` may go.
    private var nextCommit: ContinuousClock.Instant? {
        guard !commits.running, commits.requested > commits.started, !commits.urgent, commits.retryAt == nil,
            let last = commits.lastStartedAt
        else { return nil }
        return last.advanced(by: configuration.commitInterval)
    }

    // MARK: - Advancing

    /// Does whatever the state now allows, in data-flow order: submit into free slots, work off a revocation,
    /// drain, commit, finish, and pause or resume consumption.
    private mutating func advance(now: ContinuousClock.Instant, into actions: inout [Action]) {
        submitReady(now: now, into: &actions)
        advanceRevocation(now: now, into: &actions)
        advanceDrain(now: now, into: &actions)
        startCommit(now: now, into: &actions)
        if case .finishing(let error, let commit, let deadline) = lifecycle,
            (commits.landed >= commit && limbo.isEmpty) || now >= finishingDeadline(deadline)
        {
            if let revocation {
                actions.append(.completeRevocation(revocation.partitions))
                self.revocation = nil
            }
            lifecycle = .stopped
            actions.append(.finish(error))
            return
        }
        applyBackpressure(into: &actions)
    }

    /// The last commit's own deadline, extended to the end of the drain's budget while lost partitions may still
    /// come back, or the group refuses the commit or is between generations (members leaving at once keep it
    /// rebalancing for a while).
    private func finishingDeadline(_ deadline: ContinuousClock.Instant) -> ContinuousClock.Instant {
        guard !limbo.isEmpty || commits.refusals > 0 || commits.heldForRound, let drainDeadline else { return deadline }
        return max(deadline, drainDeadline)
    }

    private mutating func submitReady(now: ContinuousClock.Instant, into actions: inout [Action]) {
        switch lifecycle {
        case .running, .draining: break
        case .finishing, .stopped: return
        }
        while running.count < inFlightLimit, !ready.isEmpty {
            let operation = ready.removeFirst()
            running[operation.batchID] = (operation, now)
            let knownGone = gone.known(operation.uploadIDs, environment: operation.environment, at: now)
            actions.append(.submit(operation, knownGone: knownGone))
        }
        peakRunningJobs = max(peakRunningJobs, running.count)
        peakPendingIDs = max(peakPendingIDs, batcher.pendingCount)
    }

    private mutating func advanceRevocation(now: ContinuousClock.Instant, into actions: inout [Action]) {
        guard var revocation else { return }
        if let commit = revocation.commit {
            guard commits.landed >= commit || now >= revocation.deadline else { return }
            forget(revocation.partitions)
            self.revocation = nil
            actions.append(.completeRevocation(revocation.partitions))
            return
        }
        let outstanding = revocation.partitions.reduce(0) { $0 + offsets.outstanding(in: $1) }
        guard outstanding == 0 || now >= revocation.deadline else { return }
        storeFinished(into: &actions)
        revocation.commit = requestCommit()
        // A commit refused while rebalancing may go on until the deadline, plus a moment for one last try.
        revocation.deadline = max(revocation.deadline, now.advanced(by: configuration.commitRetryDelay * 10))
        self.revocation = revocation
    }

    private mutating func advanceDrain(now: ContinuousClock.Instant, into actions: inout [Action]) {
        guard case .draining(let deadline) = lifecycle else { return }
        let idle = ready.isEmpty && running.isEmpty && publishing.isEmpty && deadLettering.isEmpty
        guard idle || now >= deadline else { return }
        finish(nil, now: now, into: &actions)
    }

    private mutating func fail(_ error: WorkerError, now: ContinuousClock.Instant, into actions: inout [Action]) {
        switch lifecycle {
        case .running, .draining: finish(error, now: now, into: &actions)
        case .finishing, .stopped: break
        }
    }

    /// Ends the work: stores what is finished (never more), and commits it before finishing.
    private mutating func finish(_ error: WorkerError?, now: ContinuousClock.Instant, into actions: inout [Action]) {
        storeFinished(into: &actions)
        if case .draining(let deadline) = lifecycle { drainDeadline = deadline }
        lifecycle = .finishing(
            error: error, commit: requestCommit(), deadline: now.advanced(by: configuration.finalCommitTimeout))
    }

    private mutating func forget(_ partitions: Set<TopicPartition>) {
        assigned.subtract(partitions)
        paused.subtract(partitions)
        offsets.revoke(partitions)
        ledger.forget(partitions: partitions)
        for source in held.keys where partitions.contains(source.topicPartition) { held[source] = nil }
        for source in deadLettering where partitions.contains(source.topicPartition) { deadLettering.remove(source) }
    }

    /// Full batches kept ready for slots to free: half the bound, at least one.
    private var readyAhead: Int { max(1, inFlightLimit / 2) }

    /// Pauses every owned partition while full batches for half the bound wait for slots (so that a slot that frees
    /// finds the next batch ready rather than waiting for a fetch), too many dead letters are unacknowledged,
    /// or the pipeline no longer takes requests; resumes them all otherwise.
    private mutating func applyBackpressure(into actions: inout [Action]) {
        let taking: Bool
        if case .running = lifecycle { taking = true } else { taking = false }
        let shouldPause =
            !taking || ready.count >= readyAhead || deadLettering.count >= configuration.maxPendingDeadLetters
        if shouldPause {
            let toPause = assigned.subtracting(paused)
            if !toPause.isEmpty {
                paused.formUnion(toPause)
                pauses += 1
                actions.append(.pause(toPause))
            }
        } else if !paused.isEmpty {
            let toResume = paused.intersection(assigned)
            paused = []
            if !toResume.isEmpty { actions.append(.resume(toResume)) }
        }
    }
}

/// A valid request whose ids are not all reported yet: its original message (for replay after a job timeout)
/// and its requested time (for end-to-end latency).
public struct HeldRequest: Sendable {
    /// The message as consumed.
    public var message: KafkaMessage
    /// The request's `requested_at`, if it had one.
    public var requestedAt: Date?
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
