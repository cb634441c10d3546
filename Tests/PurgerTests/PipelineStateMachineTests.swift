import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

/// The pipeline state machine on a virtual clock: every event is handed in by the test, every action checked.
@Suite struct PipelineStateMachineTests {
    typealias Machine = PipelineStateMachine
    typealias Action = PipelineStateMachine.Action

    static let topic = "requests"
    static func partition(_ number: Int32) -> TopicPartition { TopicPartition(topic: topic, partition: number) }

    /// A machine, its virtual clock, and what it asked for so far.
    struct Harness {
        var machine: Machine
        let start = ContinuousClock.now
        var elapsed: Duration = .zero
        var now: ContinuousClock.Instant { start.advanced(by: elapsed) }
        /// Every action returned, in order.
        var log: [Action] = []
        /// Whether every commit the machine asks for lands at once (the returned actions then include what the
        /// landing caused).
        var commitsLandAtOnce: Bool

        init(
            maxInFlight: Int = 2, batchSize: Int = 3, maxWait: Duration = .seconds(2),
            shutdownTimeout: Duration = .seconds(10), partitions: [Int32] = [0], commitsLandAtOnce: Bool = true,
            goneCacheCapacity: Int = 0, goneCacheMaximumAge: Duration = .seconds(60)
        ) {
            self.commitsLandAtOnce = commitsLandAtOnce
            machine = Machine(
                configuration: Machine.Configuration(
                    maxInFlightJobs: maxInFlight, shutdownTimeout: shutdownTimeout, jobTimeout: .seconds(600),
                    goneCacheCapacity: goneCacheCapacity, goneCacheMaximumAge: goneCacheMaximumAge),
                batcher: Batcher(maxSize: batchSize, maxWait: maxWait))
            if !partitions.isEmpty { assign(partitions) }
        }

        @discardableResult
        mutating func handle(_ event: Machine.Event) -> [Action] {
            var actions = machine.handle(event, now: now)
            log += actions
            var landing = commitsLandAtOnce ? actions.commits : 0
            while landing > 0 {
                landing -= 1
                let more = machine.handle(.committed(nil), now: now)
                log += more
                actions += more
                landing += more.commits
            }
            return actions
        }

        @discardableResult
        mutating func advance(by duration: Duration) -> [Action] {
            elapsed += duration
            return handle(.tick)
        }

        @discardableResult
        mutating func assign(_ partitions: [Int32]) -> [Action] {
            handle(
                .consumed([.rebalance(.assigned(partitions.map(PipelineStateMachineTests.partition)))], wallNow: Date())
            )
        }

        @discardableResult
        mutating func revoke(_ partitions: [Int32], lost: Bool = false) -> [Action] {
            handle(
                .consumed(
                    [.rebalance(.revoked(partitions.map(PipelineStateMachineTests.partition), lost: lost))],
                    wallNow: Date()))
        }

        /// Consumes one request per element of `requests` (its ids), at consecutive offsets from `offset`.
        @discardableResult
        mutating func consume(_ requests: [[UploadID]], from offset: Int64, partition: Int32 = 0) -> [Action] {
            let events = requests.enumerated().map { index, ids in
                KafkaConsumerEvent.message(
                    PipelineStateMachineTests.message(ids, offset: offset + Int64(index), partition: partition))
            }
            return handle(.consumed(events, wallNow: Date()))
        }

        @discardableResult
        mutating func consumeRaw(_ value: String, offset: Int64, partition: Int32 = 0) -> [Action] {
            let message = KafkaMessage(
                topicPartition: PipelineStateMachineTests.partition(partition), offset: offset, key: nil,
                value: Array(value.utf8), headers: [], timestamp: nil)
            return handle(.consumed([.message(message)], wallNow: Date()))
        }

        /// Finishes `operation`'s job with every id deleted.
        @discardableResult
        mutating func finish(_ operation: BulkOperation, status: BulkDestroyOutcome.Status = .completed) -> [Action] {
            handle(.jobFinished(operation.batchID, PipelineStateMachineTests.outcome(operation, status: status)))
        }

        /// Finishes `operation`'s job and acknowledges its completion event.
        @discardableResult
        mutating func complete(_ operation: BulkOperation) -> [Action] {
            let published = finish(operation)
            #expect(published.publications.map(\.batchID) == [operation.batchID])
            return published + handle(.published(operation.batchID))
        }

        /// Jobs submitted and not yet finished, in submission order.
        var running: [BulkOperation] {
            var finished = Set<BatchID>()
            for case .publish(let publication) in log { finished.insert(publication.batchID) }
            return log.submitted.filter { !finished.contains($0.batchID) && machine.isRunning($0.batchID) }
        }

        /// The offsets stored so far, the highest per partition.
        var stored: [TopicPartition: Int64] {
            var stored: [TopicPartition: Int64] = [:]
            for case .storeOffsets(let offsets) in log {
                stored.merge(offsets) { max($0, $1) }
            }
            return stored
        }
    }

    static func message(_ ids: [UploadID], offset: Int64, partition: Int32 = 0) -> KafkaMessage {
        let list = ids.map { "\"\($0.rawValue)\"" }.joined(separator: ",")
        return KafkaMessage(
            topicPartition: Self.partition(partition), offset: offset, key: nil,
            value: Array("{\"upload_ids\":[\(list)]}".utf8), headers: [], timestamp: nil)
    }

    static func outcome(_ operation: BulkOperation, status: BulkDestroyOutcome.Status) -> BulkDestroyOutcome {
        let count = operation.uploadIDs.count
        let completed = status == .completed
        return BulkDestroyOutcome(
            status: status, jobIDs: [JobID("job-\(operation.batchID)")], jobStatus: completed ? 200 : nil,
            requested: count, deleted: completed ? count : 0, notFound: 0, stillPresent: completed ? 0 : count,
            stillPresentIDs: completed ? [] : nil, counts: completed ? .exact : .inferred,
            goneIDs: completed ? operation.uploadIDs : [], error: completed ? nil : "\(status)", attempts: 1,
            polls: 1, lookups: 0, submittedAt: Date(), completedAt: Date())
    }

    // MARK: - Ids confirmed gone

    @Test func idsConfirmedGoneAreLeftOutOfALaterSubmissionWithinTheWindow() throws {
        var harness = Harness(batchSize: 3, goneCacheCapacity: 100, goneCacheMaximumAge: .seconds(60))
        let first = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.complete(first)
        let again = harness.consume([uploadIDs(2...4)], from: 1)
        #expect(again.submitted.count == 1)
        #expect(again.knownGone == [Set(uploadIDs(2...3))])
    }

    @Test func idsConfirmedGoneAreAskedAgainOnceTheWindowHasPassed() throws {
        var harness = Harness(batchSize: 3, goneCacheCapacity: 100, goneCacheMaximumAge: .seconds(60))
        let first = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.complete(first)
        harness.advance(by: .seconds(61))
        #expect(harness.consume([uploadIDs(1...3)], from: 1).knownGone == [[]])
    }

    @Test func aGoneCacheOfSizeZeroRemembersNothing() throws {
        var harness = Harness(batchSize: 3, goneCacheCapacity: 0)
        let first = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.complete(first)
        #expect(harness.consume([uploadIDs(1...3)], from: 1).knownGone == [[]])
    }

    @Test func idsOfATimedOutJobAreNotRememberedAsGone() throws {
        var harness = Harness(batchSize: 3, goneCacheCapacity: 100)
        let first = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.finish(first, status: .timedOut)
        #expect(harness.consume([uploadIDs(1...3)], from: 1).knownGone == [[]])
    }

    // MARK: - Data flow

    @Test func aFullBatchIsSubmittedAndItsOffsetStoredOnlyOnceItsEventIsAcknowledged() throws {
        var harness = Harness()
        let submitted = harness.consume([uploadIDs(1...3)], from: 0).submitted
        let operation = try #require(submitted.first)
        #expect(submitted.count == 1)
        #expect(harness.stored.isEmpty)
        let published = harness.finish(operation)
        #expect(published.publications.count == 1)
        #expect(published.publications.first?.event.successful == 3)
        #expect(harness.stored.isEmpty, "nothing is stored before the event is acknowledged")
        let acknowledged = harness.handle(.published(operation.batchID))
        #expect(acknowledged.storedOffsets == [Self.partition(0): 1])
        #expect(acknowledged.commits == 0, "not within a commit interval of the assignment")
        #expect(harness.advance(by: .seconds(5)).commits == 1, "finished work is committed")
    }

    @Test func finishedWorkIsCommittedAtMostOncePerCommitIntervalAndNotRightAfterARebalance() throws {
        var harness = Harness(maxInFlight: 2)
        let jobs = harness.consume([uploadIDs(1...3), uploadIDs(4...6)], from: 0).submitted
        #expect(harness.complete(jobs[0]).commits == 0, "the assignment changed a moment ago")
        #expect(harness.advance(by: .seconds(5)).commits == 1)
        harness.advance(by: .milliseconds(300))
        let second = harness.complete(jobs[1])
        #expect(second.storedOffsets == [Self.partition(0): 2], "stored at once")
        #expect(second.commits == 0, "committed no sooner than the commit interval after the last commit")
        #expect(harness.machine.nextDeadline == harness.now.advanced(by: .milliseconds(4700)))
        #expect(harness.advance(by: .milliseconds(4699)).commits == 0)
        #expect(harness.advance(by: .milliseconds(1)).commits == 1)
    }

    @Test func aPendingBatchIsSubmittedWhenItsOldestIDHasWaitedMaxWait() {
        var harness = Harness(maxWait: .seconds(2))
        #expect(harness.consume([uploadIDs(1...2)], from: 0).submitted.isEmpty)
        #expect(harness.machine.nextDeadline == harness.now.advanced(by: .seconds(2)))
        #expect(harness.advance(by: .milliseconds(1999)).submitted.isEmpty)
        #expect(harness.advance(by: .milliseconds(1)).submitted.map(\.uploadIDs) == [uploadIDs(1...2)])
    }

    @Test func outOfOrderCompletionStoresNothingPastAnUnfinishedRequest() throws {
        var harness = Harness(maxInFlight: 3)
        let submitted = harness.consume([uploadIDs(1...3), uploadIDs(4...6), uploadIDs(7...9)], from: 0).submitted
        #expect(submitted.count == 3)
        harness.complete(submitted[2])
        harness.complete(submitted[1])
        #expect(harness.stored.isEmpty, "offset 0 is unfinished")
        harness.complete(submitted[0])
        #expect(harness.stored == [Self.partition(0): 3])
    }

    @Test func anInvalidRequestIsDeadLetteredAndItsOffsetStoredWhenAcknowledged() throws {
        var harness = Harness()
        let actions = harness.consumeRaw("{not json", offset: 0)
        let deadLetters = actions.compactMap { action -> DeadLetter? in
            if case .deadLetter(_, let deadLetter) = action { deadLetter } else { nil }
        }
        #expect(deadLetters.map(\.code) == [.invalidJSON])
        #expect(harness.stored.isEmpty)
        harness.handle(.deadLettered(position(0)))
        #expect(harness.stored == [Self.partition(0): 1])
    }

    @Test func aTimedOutJobDeadLettersItsRequestsWithItsEvent() throws {
        var harness = Harness()
        let operation = try #require(harness.consume([uploadIDs(1...3)], from: 7).submitted.first)
        let publication = try #require(harness.finish(operation, status: .timedOut).publications.first)
        #expect(publication.event.status == .timedOut)
        #expect(publication.deadLetters.map(\.message.offset) == [7])
        #expect(publication.deadLetters.map(\.deadLetter.code) == [.jobTimeout])
        harness.handle(.published(operation.batchID))
        #expect(harness.stored == [Self.partition(0): 8])
    }

    // MARK: - The bound on jobs

    @Test func neverMoreJobsRunThanTheBoundAndAFreedSlotTakesTheNextReadyBatch() throws {
        var harness = Harness(maxInFlight: 2, batchSize: 3)
        let actions = harness.consume((0..<5).map { uploadIDs((3 * $0 + 1)...(3 * $0 + 3)) }, from: 0)
        #expect(actions.submitted.count == 2, "five full batches, two slots")
        #expect(harness.machine.readyBatches == 3)
        #expect(actions.paused == [Self.partition(0)], "a batch waiting for a slot pauses consumption")
        let next = harness.complete(actions.submitted[0])
        #expect(next.submitted.count == 1, "the freed slot takes exactly one batch")
        #expect(harness.machine.runningJobs == 2)
        #expect(next.resumed.isEmpty, "still two batches waiting")
        harness.complete(actions.submitted[1])
        let last = harness.complete(next.submitted[0])
        #expect(last.resumed == [Self.partition(0)], "consumption resumes once no batch waits for a slot")
        #expect(harness.machine.peakRunningJobs == 2)
    }

    @Test func randomInterleavingsKeepTheBoundAndNeverStoreUnfinishedWork() {
        for seed in UInt64(1)...40 {
            var random = SplitMix64(seed: seed)
            let bound = Int(random.next() % 3) + 1
            var harness = Harness(maxInFlight: bound, batchSize: 4, partitions: [0, 1])
            var nextOffset: [Int32: Int64] = [0: 0, 1: 0]
            var requestIDs: [SourcePosition: [UploadID]] = [:]
            var published: Set<BatchID> = []
            var acknowledged: Set<BatchID> = []
            var eventsFor: [SourcePosition: Set<BatchID>] = [:]
            for _ in 0..<300 {
                switch random.next() % 6 {
                case 0, 1:
                    let partition = Int32(random.next() % 2)
                    let ids = (0..<(Int(random.next() % 6) + 1)).map { _ in uploadID(Int(random.next() % 40) + 1) }
                    let offset = nextOffset[partition]!
                    nextOffset[partition]! += 1
                    requestIDs[position(offset, partition: partition)] = ids
                    harness.consume([ids], from: offset, partition: partition)
                case 2:
                    if let job = harness.running.randomElement(using: &random) { harness.finish(job) }
                case 3:
                    let unacknowledged = published.subtracting(acknowledged)
                    if let batch = unacknowledged.randomElement(using: &random) {
                        acknowledged.insert(batch)
                        harness.handle(.published(batch))
                    }
                default:
                    harness.advance(by: .milliseconds(Int64(random.next() % 1500)))
                }
                for case .publish(let publication) in harness.log where !published.contains(publication.batchID) {
                    published.insert(publication.batchID)
                    for ref in publication.event.requests {
                        eventsFor[ref.source, default: []].insert(publication.batchID)
                    }
                }
                #expect(harness.machine.runningJobs <= bound, "seed \(seed)")
                // Every request below a stored offset has all its events acknowledged.
                for (partition, offset) in harness.stored {
                    for below in 0..<offset {
                        let source = position(below, partition: partition.partition)
                        #expect(eventsFor[source]?.isSubset(of: acknowledged) ?? false, "seed \(seed): \(source)")
                    }
                }
            }
            #expect(harness.machine.peakRunningJobs <= bound)
        }
    }

    // MARK: - Revocation

    @Test func aRevocationWaitsForInFlightJobsAndTheirEventsThenStoresCommitsAndCompletes() throws {
        var harness = Harness(maxInFlight: 2, partitions: [0, 1])
        let jobs = harness.consume([uploadIDs(1...3)], from: 0, partition: 0).submitted
        let other = harness.consume([uploadIDs(4...6)], from: 0, partition: 1).submitted
        #expect(harness.consume([uploadIDs(7...7)], from: 1, partition: 0).submitted.isEmpty, "pending")
        let revoking = harness.revoke([0])
        #expect(revoking.submitted.isEmpty, "the pending id waits for a free slot")
        #expect(revoking.revocationsCompleted.isEmpty)
        // A message of the revoked partition arriving now is left to its next owner.
        harness.consume([uploadIDs(8...8)], from: 2, partition: 0)
        #expect(harness.machine.pendingIDs == 0)

        let slot = harness.complete(other[0])
        #expect(slot.submitted.map(\.uploadIDs) == [[uploadID(7)]])
        let published = harness.finish(jobs[0])
        #expect(published.revocationsCompleted.isEmpty, "its event is not acknowledged yet")
        harness.handle(.published(jobs[0].batchID))
        #expect(harness.log.revocationsCompleted.isEmpty, "offset 1 is still in flight")
        let last = try #require(harness.running.first { $0.uploadIDs == [uploadID(7)] })
        let done = harness.complete(last)
        #expect(done.storedOffsets[Self.partition(0)] == 2)
        #expect(done.revocationsCompleted == [[Self.partition(0)]])
        #expect(done.isOrdered(commitBefore: .revocation), "the revocation completes after its commit landed")
        #expect(harness.machine.assigned == [Self.partition(1)])
    }

    @Test func aPartitionPausedWhenRevokedIsResumedWhenAssignedAgain() throws {
        // librdkafka keeps the pause of a partition across a revocation and a new assignment.
        var harness = Harness(maxInFlight: 1, batchSize: 1, partitions: [0])
        let jobs = harness.consume([uploadIDs(1...1), uploadIDs(2...2)], from: 0).submitted
        #expect(harness.log.paused == [Self.partition(0)], "a full batch waits for the one slot")
        harness.revoke([0])
        harness.complete(jobs[0])
        let running = try #require(harness.running.first)
        harness.complete(running)
        #expect(harness.log.revocationsCompleted == [[Self.partition(0)]])
        #expect(harness.machine.paused.isEmpty)
        let reassigned = harness.assign([0])
        #expect(reassigned.resumed == [Self.partition(0)], "the partition librdkafka still has paused fetches again")
        #expect(!reassigned.contains { if case .pause = $0 { true } else { false } })
    }

    @Test func aRevocationGivesUpWaitingAtItsBudgetAndStoresOnlyFinishedWork() throws {
        var harness = Harness(maxInFlight: 2, shutdownTimeout: .seconds(10))
        let jobs = harness.consume([uploadIDs(1...3), uploadIDs(4...6)], from: 0).submitted
        harness.revoke([0])
        harness.complete(jobs[1])
        #expect(harness.advance(by: .seconds(9)).commits == 0)
        let expired = harness.advance(by: .seconds(1))
        #expect(expired.storedOffsets.isEmpty, "offset 0 never finished")
        #expect(expired.commits == 1)
        #expect(expired.revocationsCompleted == [[Self.partition(0)]])
        // The job still running finishes and publishes, but moves no offset of the partition it no longer owns.
        let late = harness.complete(jobs[0])
        #expect(late.storedOffsets.isEmpty)
    }

    @Test func aRevocationCommitRefusedWhileRebalancingIsTriedAgain() throws {
        var harness = Harness(partitions: [0, 1], commitsLandAtOnce: false)
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.complete(job)
        harness.revoke([0])
        #expect(harness.log.commits == 1, "the revocation's commit goes at once")
        let refused = harness.handle(.committed(KafkaError(code: .rebalanceInProgress)))
        #expect(refused.commits == 0 && refused.revocationsCompleted.isEmpty)
        let retried = harness.advance(by: .milliseconds(100))
        #expect(retried.commits == 1, "the refused commit goes again")
        #expect(harness.handle(.committed(nil)).revocationsCompleted == [[Self.partition(0)]])
    }

    @Test func lostPartitionsAreForgottenAtOnceAndTheirWorkNeverStored() throws {
        var harness = Harness()
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        let lost = harness.revoke([0], lost: true)
        #expect(lost.revocationsCompleted.isEmpty, "librdkafka already let them go")
        #expect(harness.machine.assigned.isEmpty)
        #expect(harness.complete(job).storedOffsets.isEmpty)
    }

    @Test func aLostPartitionGivenBackAtOnceKeepsItsWorkAndIgnoresRedeliveries() throws {
        var harness = Harness(partitions: [0, 1])
        let jobs = harness.consume([uploadIDs(1...3), uploadIDs(4...6)], from: 5).submitted
        harness.complete(jobs[0])
        #expect(harness.stored == [Self.partition(0): 6])
        harness.revoke([0, 1], lost: true)
        harness.assign([0, 1])
        // librdkafka fetches again from the committed offset: offset 6 comes again while its job still runs.
        #expect(harness.consume([uploadIDs(4...6)], from: 6).submitted.isEmpty, "a redelivery, not new work")
        let done = harness.complete(jobs[1])
        #expect(done.storedOffsets == [Self.partition(0): 7])
    }

    @Test func aLostPartitionNotGivenBackIsForgottenAndStartsAfreshLater() throws {
        var harness = Harness(partitions: [0, 1])
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 5).submitted.first)
        harness.revoke([0, 1], lost: true)
        harness.assign([1])
        harness.assign([0])
        let again = try #require(harness.consume([uploadIDs(7...9)], from: 5).submitted.first, "tracked anew")
        harness.complete(job)
        #expect(harness.stored.isEmpty)
        harness.complete(again)
        #expect(harness.stored == [Self.partition(0): 6])
    }

    /// A full restart: the last commit is refused, the assignment lost, and the partition goes to another member
    /// that is stopping too. Its finished work is committed explicitly, not left for the next start to redo.
    @Test func finishedWorkOfAPartitionLostToAnotherMemberIsCommittedExplicitly() throws {
        var harness = Harness(partitions: [0, 1], commitsLandAtOnce: false)
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.handle(.stopRequested)
        #expect(harness.complete(job).storedOffsets == [Self.partition(0): 1])
        #expect(harness.handle(.committed(KafkaError(code: .illegalGeneration))).finishes.isEmpty)
        harness.revoke([0, 1], lost: true)
        let reassigned = harness.assign([1])
        #expect(reassigned.orphanedCommitted == [Self.partition(0): 1], "the round is over: the commit goes at once")
        #expect(harness.handle(.committed(nil)).finishes.count == 1)
    }

    @Test func anOrphanedOffsetIsCommittedUntilItLandsAndDroppedWhenThePartitionComesBack() throws {
        var harness = Harness(partitions: [0, 1], commitsLandAtOnce: false)
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.complete(job)
        harness.revoke([0, 1], lost: true)
        harness.assign([1])
        let first = harness.advance(by: .seconds(10))
        #expect(first.orphanedCommitted == [Self.partition(0): 1])
        harness.handle(.committed(KafkaError(code: .rebalanceInProgress)))
        #expect(harness.advance(by: .seconds(1)).commits == 0, "not while the round goes on")
        #expect(harness.assign([]).orphanedCommitted == [Self.partition(0): 1], "refused: again when it ends")
        harness.handle(.committed(nil))
        harness.assign([0])
        let later = harness.consume([uploadIDs(4...6)], from: 7)
        harness.complete(try #require(later.submitted.first))
        let next = harness.advance(by: .seconds(10))
        #expect(next.commits == 1 && next.orphanedCommitted.isEmpty, "landed once, and the partition is back")
    }

    @Test func theLastCommitLostToARebalanceIsMadeAgainWhenThePartitionsComeBack() throws {
        var harness = Harness(partitions: [0], commitsLandAtOnce: false)
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.handle(.stopRequested)
        let drained = harness.complete(job)
        #expect(drained.storedOffsets == [Self.partition(0): 1] && drained.commits == 1)
        #expect(harness.handle(.committed(KafkaError(code: .illegalGeneration))).finishes.isEmpty)
        harness.revoke([0], lost: true)
        #expect(harness.advance(by: .seconds(2)).commits == 0, "no commit while the partitions are lost")
        #expect(harness.log.finishes.isEmpty, "the finish waits for them")
        let back = harness.assign([0])
        #expect(back.storedOffsets == [Self.partition(0): 1], "stored again: librdkafka dropped it with the assignment")
        #expect(back.commits == 1)
        #expect(harness.handle(.committed(nil)).finishes.count == 1)
    }

    /// A commit sent while the member rejoins is answered after the join with the generation that ended, which
    /// librdkafka takes for a lost assignment and whose rejoin restarts the round for every member: a refused commit
    /// goes again when the member's next assignment (empty if nothing changed) ends the round, not on a timer.
    @Test func aCommitRefusedWhileTheGroupRebalancesWaitsForTheEndOfTheRound() throws {
        var harness = Harness(shutdownTimeout: .seconds(600), partitions: [0], commitsLandAtOnce: false)
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.handle(.stopRequested)
        #expect(harness.complete(job).commits == 1)
        for error in [KafkaError.Code.rebalanceInProgress, .illegalGeneration, .unknownMemberID] {
            #expect(harness.handle(.committed(KafkaError(code: error))).commits == 0, "\(error)")
            #expect(harness.advance(by: .seconds(9)).commits == 0, "no commit while the round goes on: \(error)")
            #expect(harness.assign([]).commits == 1, "the round ended: \(error)")
        }
        #expect(harness.handle(.committed(KafkaError(code: .rebalanceInProgress))).commits == 0)
        #expect(harness.advance(by: .milliseconds(9_999)).commits == 0)
        #expect(harness.advance(by: .milliseconds(1)).commits == 1, "a round that never ends: tried again after 10 s")
        #expect(harness.handle(.committed(KafkaError(code: .coordinatorNotAvailable))).commits == 0)
        #expect(harness.advance(by: .milliseconds(500)).commits == 1, "other errors: again on a timer")
        #expect(harness.handle(.committed(nil)).finishes.count == 1)
    }

    /// The statistics say the member is rejoining: a commit would wait behind its JoinGroup and be refused for the
    /// generation that ended, so none starts before the round ends; a revocation meanwhile still commits.
    @Test func noCommitStartsWhileTheMemberRejoinsItsGroup() throws {
        var harness = Harness(shutdownTimeout: .seconds(600), partitions: [0, 1], commitsLandAtOnce: false)
        let jobs = harness.consume([uploadIDs(1...3)], from: 0, partition: 0).submitted
        harness.handle(.consumed([.rebalance(.rejoining)], wallNow: Date()))
        harness.handle(.stopRequested)
        let finished = harness.complete(jobs[0])
        #expect(finished.storedOffsets == [Self.partition(0): 1])
        #expect(finished.commits == 0, "not while the member rejoins")
        #expect(harness.advance(by: .seconds(9)).commits == 0)
        #expect(
            harness.advance(by: .milliseconds(900)).finishes.isEmpty,
            "the last commit waits past its own timeout, within the drain's budget")
        #expect(harness.assign([]).commits == 1, "the round ended")
        #expect(harness.handle(.committed(nil)).finishes.count == 1)

        // A revocation during a rejoin commits (the round waits for it).
        var revoking = Harness(shutdownTimeout: .seconds(600), partitions: [0, 1], commitsLandAtOnce: false)
        let job = try #require(revoking.consume([uploadIDs(1...3)], from: 0, partition: 0).submitted.first)
        revoking.handle(.consumed([.rebalance(.rejoining)], wallNow: Date()))
        revoking.revoke([0])
        let revoked = revoking.complete(job)
        #expect(
            revoked.commits + revoking.advance(by: .milliseconds(100)).commits == 1, "the revocation's commit goes")
        #expect(revoking.handle(.committed(nil)).revocationsCompleted == [[Self.partition(0)]])

        // A round that never ends holds commits for the round timeout only.
        var stuck = Harness(partitions: [0], commitsLandAtOnce: false)
        let stuckJob = try #require(stuck.consume([uploadIDs(1...3)], from: 0).submitted.first)
        stuck.handle(.consumed([.rebalance(.rejoining)], wallNow: Date()))
        stuck.complete(stuckJob)
        #expect(stuck.advance(by: .milliseconds(9_999)).commits == 0)
        #expect(stuck.advance(by: .milliseconds(1)).commits == 1)
    }

    // MARK: - Stop, drain and failure

    @Test func aStopSubmitsPendingIDsWaitsForJobsAndTheirEventsCommitsAndFinishes() throws {
        var harness = Harness(maxInFlight: 1)
        let first = try #require(harness.consume([uploadIDs(1...3), uploadIDs(4...4)], from: 0).submitted.first)
        let stopping = harness.handle(.stopRequested)
        #expect(stopping.paused == [Self.partition(0)])
        #expect(stopping.submitted.isEmpty, "the slot is taken")
        // Nothing consumed while draining is taken on.
        harness.consume([uploadIDs(9...9)], from: 2)
        let next = harness.complete(first)
        #expect(next.submitted.map(\.uploadIDs) == [[uploadID(4)]])
        let last = try #require(next.submitted.first)
        let done = harness.complete(last)
        #expect(done.storedOffsets[Self.partition(0)] == 2)
        #expect(done.finishes.count == 1)
        #expect(done.isOrdered(commitBefore: .finish), "the last commit lands before the finish")
        if case .stopped = harness.machine.lifecycle {} else { Issue.record("stopped") }
        #expect(harness.handle(.stopRequested).isEmpty, "a stopped machine does nothing")
    }

    @Test func aDrainThatOutlastsItsBudgetFinishesWithoutStoringUnfinishedWork() throws {
        var harness = Harness(shutdownTimeout: .seconds(5))
        _ = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.handle(.stopRequested)
        #expect(harness.advance(by: .milliseconds(4999)).commits == 0)
        let expired = harness.advance(by: .milliseconds(1))
        #expect(expired.storedOffsets.isEmpty)
        #expect(expired.commits == 1)
        #expect(expired.finishes.count == 1)
    }

    @Test func aStopDuringARevocationDrainsBothAndCompletesTheRevocationBeforeFinishing() throws {
        var harness = Harness(partitions: [0, 1])
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0, partition: 0).submitted.first)
        harness.revoke([0])
        harness.handle(.stopRequested)
        let done = harness.complete(job)
        #expect(done.storedOffsets == [Self.partition(0): 1])
        #expect(done.revocationsCompleted == [[Self.partition(0)]])
        #expect(done.finishes.count == 1)
        #expect(done.isOrdered(commitBefore: .revocation) && done.isOrdered(commitBefore: .finish))
    }

    @Test func aFatalErrorWithJobsInFlightStoresOnlyFinishedWorkAndFinishesWithTheError() throws {
        var harness = Harness(maxInFlight: 2)
        let jobs = harness.consume([uploadIDs(1...3), uploadIDs(4...6)], from: 0).submitted
        harness.complete(jobs[1])
        let finished = harness.handle(
            .jobFailed(jobs[0].batchID, CMAError(kind: .fatal, httpStatus: 401, message: "rejected")))
        #expect(finished.storedOffsets.isEmpty, "offset 0 is unfinished")
        #expect(finished.submitted.isEmpty)
        guard case .finish(let error?) = finished.last else {
            Issue.record("finishes with the error: \(finished)")
            return
        }
        guard case .tokenRejected = error else {
            Issue.record("token rejected, got \(error)")
            return
        }
    }

    @Test func aPublishFailureStopsTheWorkerAndMovesNoOffset() throws {
        var harness = Harness()
        let job = try #require(harness.consume([uploadIDs(1...3)], from: 0).submitted.first)
        harness.finish(job)
        let finished = harness.handle(.publishFailed(KafkaError(code: .messageTimedOut)))
        #expect(harness.stored.isEmpty)
        guard case .finish(.kafka?) = finished.last else {
            Issue.record("finishes with the Kafka error: \(finished)")
            return
        }
        #expect(harness.handle(.published(job.batchID)).isEmpty, "nothing happens after the finish")
    }

    @Test func aCancelledWorkerStoresWhatFinishedAndFinishesAtOnce() throws {
        var harness = Harness(maxInFlight: 2, commitsLandAtOnce: false)
        let jobs = harness.consume([uploadIDs(1...3), uploadIDs(4...6)], from: 0).submitted
        harness.handle(.stopRequested)
        harness.complete(jobs[0])
        let cancelled = harness.handle(.cancelled)
        #expect(cancelled.finishes.count == 1, "no commit is awaited")
        #expect(harness.stored == [Self.partition(0): 1], "offset 1 is unfinished")
        #expect(harness.handle(.jobFinished(jobs[1].batchID, Self.outcome(jobs[1], status: .completed))).isEmpty)
    }

    @Test func theLastCommitIsAwaitedOnlyUntilItsTimeout() throws {
        var harness = Harness(shutdownTimeout: .seconds(3), commitsLandAtOnce: false)
        harness.handle(.stopRequested)
        #expect(harness.log.commits == 1)
        #expect(harness.advance(by: .seconds(4)).finishes.isEmpty)
        #expect(harness.advance(by: .seconds(1)).finishes.count == 1)
    }
}

extension PipelineStateMachine {
    /// Whether `batch` was submitted and its job has not finished.
    func isRunning(_ batch: BatchID) -> Bool {
        runningBatchIDs.contains(batch)
    }
}

extension [PipelineStateMachine.Action] {
    enum Milestone { case revocation, finish }

    /// Whether a commit comes before the first `milestone` action.
    func isOrdered(commitBefore milestone: Milestone) -> Bool {
        let reached = firstIndex {
            switch ($0, milestone) {
            case (.completeRevocation, .revocation), (.finish, .finish): true
            default: false
            }
        }
        guard let reached, let commit = firstIndex(where: { if case .commit = $0 { true } else { false } }) else {
            return false
        }
        return commit < reached
    }

    var submitted: [BulkOperation] {
        compactMap { if case .submit(let operation, _) = $0 { operation } else { nil } }
    }

    /// The ids each submission leaves out as known gone, in submission order.
    var knownGone: [Set<UploadID>] {
        compactMap { if case .submit(_, let knownGone) = $0 { knownGone } else { nil } }
    }

    var publications: [PipelineStateMachine.Publication] {
        compactMap { if case .publish(let publication) = $0 { publication } else { nil } }
    }

    var storedOffsets: [TopicPartition: Int64] {
        var stored: [TopicPartition: Int64] = [:]
        for case .storeOffsets(let offsets) in self { stored.merge(offsets) { Swift.max($0, $1) } }
        return stored
    }

    var commits: Int { count { if case .commit = $0 { true } else { false } } }

    /// The offsets commits carry for partitions owned by another member.
    var orphanedCommitted: [TopicPartition: Int64] {
        var committed: [TopicPartition: Int64] = [:]
        for case .commit(let orphaned) in self { committed.merge(orphaned) { Swift.max($0, $1) } }
        return committed
    }

    var paused: Set<TopicPartition> {
        reduce(into: []) { if case .pause(let partitions) = $1 { $0.formUnion(partitions) } }
    }

    var resumed: Set<TopicPartition> {
        reduce(into: []) { if case .resume(let partitions) = $1 { $0.formUnion(partitions) } }
    }

    var revocationsCompleted: [Set<TopicPartition>] {
        compactMap { if case .completeRevocation(let partitions) = $0 { partitions } else { nil } }
    }

    var finishes: [WorkerError?] {
        compactMap { if case .finish(let error) = $0 { .some(error) } else { nil } }
    }
}
