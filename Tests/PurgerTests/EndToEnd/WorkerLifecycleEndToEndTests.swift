import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Synchronization
import Testing

extension PipelineEndToEndTests {
    @Suite("Worker lifecycle end to end")
    struct WorkerLifecycleEndToEndTests {
        /// Produces `count` single-id requests `req-<i>` with distinct ids of the primary environment; returns their
        /// request ids and the end offset of every partition.
        static func produceDistinctRequests(
            _ count: Int, fixture: PipelineFixture
        ) async throws -> (requestIDs: Set<String>, ends: [TopicPartition: Int64]) {
            let uploads = distinctUploads(fixture, count: count)
            let values = (0..<count).map { requestJSON(id: "req-\($0)", uploads: [uploads[$0]], environment: nil) }
            let producer = try fixture.producer()
            try await fixture.produce(values, with: producer)
            await producer.close()
            let consumed = try await fixture.read(fixture.requestsTopic) { $0.count >= count }
            return (Set((0..<count).map { "req-\($0)" }), fixture.endOffsets(of: consumed))
        }

        /// A simulator whose jobs take long enough that a worker always has some in flight.
        static func steadySimulator() -> SimulatorConfiguration {
            PipelineFixture.fastSimulator(jobBaseDuration: .milliseconds(200))
        }

        static func expectCommitted(
            _ ends: [TopicPartition: Int64], group: String, fixture: PipelineFixture
        ) async throws {
            let committed = try await fixture.committedOffsets(group: group)
            for (partition, end) in ends {
                #expect(committed[partition] == .some(end), "partition \(partition) committed to its end")
            }
        }

        // MARK: - Two members, one leaving

        @Test func aMemberLeavingWithJobsInFlightLosesNothingAndCommitsWhatItFinished() async throws {
            let fixture = try await PipelineFixture(simulator: Self.steadySimulator())
            let count = 3000
            let (requestIDs, ends) = try await Self.produceDistinctRequests(count, fixture: fixture)
            let group = "purger-\(UUID())"
            let settings = try fixture.settings(group: group, batchMaxSize: 25, maxInFlight: 4)
            // Held jobs never finish: once the leaving member has a job in flight, it keeps it until released. (The
            // first jobs of both members are held for as long as the group takes to form: the poll schedule must
            // not learn that as their duration, or the remaining member notices every later job that late.)
            fixture.simulator.holdJobs()
            let first = RunningWorker(fixture.worker(settings))
            let second = RunningWorker(fixture.worker(settings))
            let busy = await eventually(timeout: .seconds(90)) {
                second.worker.assignedPartitionCount > 0 && first.worker.assignedPartitionCount > 0
                    && second.worker.inFlightCount > 0
            }
            #expect(
                busy,
                """
                both members own partitions and the leaving one has work in flight: first \
                \(first.worker.assignedPartitionCount), second \(second.worker.assignedPartitionCount) partitions
                """)
            await second.triggerShutdown()
            fixture.simulator.releaseJobs()
            let left = await second.ended(within: .seconds(60))
            #expect(left?.succeeded == true, "the leaving member shut down cleanly")
            #expect(
                await eventually(timeout: .seconds(30)) {
                    first.worker.assignedPartitionCount == Int(fixture.partitions)
                },
                "the remaining member takes over every partition")

            let results = try await fixture.read(fixture.resultsTopic, timeout: .seconds(90)) {
                Set(reportedRequestIDs($0).keys).isSuperset(of: requestIDs)
            }
            // What the remaining member was doing, should it not have reported everything in time.
            let state =
                "remaining member: \(first.worker.assignedPartitionCount) partitions, "
                + "\(first.worker.pausedPartitionCount) paused, \(first.worker.inFlightCount) jobs in flight, "
                + "\(first.worker.pendingCount) ids pending; simulator: \(fixture.simulator.heldJobCount) jobs held"
            let stayed = await first.shutdown()
            #expect(stayed?.succeeded == true)

            let reported = reportedRequestIDs(results)
            let unreported = requestIDs.subtracting(reported.keys)
            #expect(unreported.isEmpty, "every request is reported: \(unreported.count) are not; \(state)")
            let repeated = reported.filter { $0.value > 1 }
            print("two members, one leaving: \(repeated.count) of \(count) requests reported more than once")
            #expect(repeated.count <= count / 20, "only work in flight at the revocation is repeated")
            #expect(try results.map(ReadEvent.init).allSatisfy { $0.status == "completed" })
            try await Self.expectCommitted(ends, group: group, fixture: fixture)
            await fixture.simulator.shutdown()
        }

        // MARK: - The bound on jobs

        @Test func twentyIDBatchesWithALimitOfTwoNeverHaveAThirdJobInFlight() async throws {
            let fixture = try await PipelineFixture(
                simulator: PipelineFixture.fastSimulator(jobBaseDuration: .milliseconds(50)))
            let count = 400
            let (requestIDs, ends) = try await Self.produceDistinctRequests(count, fixture: fixture)
            let group = "purger-\(UUID())"
            let worker = fixture.worker(try fixture.settings(group: group, batchMaxSize: 20, maxInFlight: 2))
            let (results, failure) = try await withRunningWorker(worker) {
                try await fixture.read(fixture.resultsTopic) {
                    Set(reportedRequestIDs($0).keys).isSuperset(of: requestIDs)
                }
            }
            #expect(failure == nil)
            #expect(Set(reportedRequestIDs(results).keys) == requestIDs)
            let stats = fixture.simulator.stats()
            #expect(stats.jobsStarted >= count / 20)
            #expect(stats.maxOpenJobs <= 2, "the API never saw a third job open: \(stats.maxOpenJobs)")
            #expect(worker.peakRunningJobs <= 2, "the worker never ran a third job: \(worker.peakRunningJobs)")
            try await Self.expectCommitted(ends, group: group, fixture: fixture)
            await fixture.simulator.shutdown()
        }

        // MARK: - Abrupt stop

        @Test func aCancelledWorkerLosesNothingAfterARestart() async throws {
            let fixture = try await PipelineFixture(simulator: Self.steadySimulator())
            let count = 3000
            let (requestIDs, ends) = try await Self.produceDistinctRequests(count, fixture: fixture)
            let group = "purger-\(UUID())"
            let settings = try fixture.settings(group: group, batchMaxSize: 25, maxInFlight: 4)

            let first = RunningWorker(fixture.worker(settings))
            // Some work is committed (the group's offsets only grow), then held jobs keep the rest in flight.
            #expect(
                await eventually(timeout: .seconds(90)) {
                    let committed = (try? await fixture.committedOffsets(group: group)) ?? [:]
                    return committed.values.contains { ($0 ?? 0) > 0 }
                }, "the first worker commits finished work")
            fixture.simulator.holdJobs()
            #expect(
                await eventually { fixture.simulator.heldJobCount > 0 }, "jobs are in flight when the worker is stopped"
            )
            let cancelled = await first.cancel()
            #expect(cancelled != nil, "the worker ends when its task is cancelled")
            let committedAfterStop = try await fixture.committedOffsets(group: group)
            let done = committedAfterStop.values.reduce(Int64(0)) { $0 + ($1 ?? 0) }
            #expect(done > 0 && done < Int64(count), "the stop came mid-run, after some work was committed")

            fixture.simulator.releaseJobs()
            let second = RunningWorker(fixture.worker(settings))
            let results = try await fixture.read(fixture.resultsTopic, timeout: .seconds(90)) {
                Set(reportedRequestIDs($0).keys).isSuperset(of: requestIDs)
            }
            #expect(await second.shutdown()?.succeeded == true)
            let reported = reportedRequestIDs(results)
            #expect(requestIDs.subtracting(reported.keys).isEmpty, "every request is reported across both runs")
            let repeated = reported.filter { $0.value > 1 }.count
            print("abrupt stop: \(repeated) of \(count) requests reported twice; \(done) committed at the stop")
            try await Self.expectCommitted(ends, group: group, fixture: fixture)
            await fixture.simulator.shutdown()
        }

        // MARK: - A full restart

        @Test func threeMembersStoppedAtOnceCommitEveryPartitionToWhatWasReported() async throws {
            let fixture = try await PipelineFixture(simulator: Self.steadySimulator())
            let count = 3000
            let (_, _) = try await Self.produceDistinctRequests(count, fixture: fixture)
            let group = "purger-\(UUID())"
            let settings = try fixture.settings(group: group, batchMaxSize: 25, maxInFlight: 4)
            fixture.simulator.holdJobs()
            let logs = LogRecorder()
            let members = (0..<3).map { index in
                RunningWorker(fixture.worker(settings, logger: logs.logger(label: "member-\(index)", level: .info)))
            }
            // With jobs held, a member that has work in flight keeps it: every member is certainly busy when stopped.
            let busy = await eventually(timeout: .seconds(90)) {
                members.allSatisfy { $0.worker.assignedPartitionCount > 0 && $0.worker.inFlightCount > 0 }
            }
            #expect(busy, "every member owns partitions and has work in flight")
            // The first commits of the stop are answered for a generation that has ended, as when a commit races
            // the others leaving: librdkafka reports the committing member's assignment lost (unless a rebalance is
            // already under way) and the member must get its finished work committed all the same.
            fixture.cluster.pushRequestErrors(.offsetCommit, errors: Array(repeating: .illegalGeneration, count: 3))
            for member in members { await member.triggerShutdown() }
            fixture.simulator.releaseJobs()
            for member in members {
                #expect(await member.ended(within: .seconds(60))?.succeeded == true, "each member drains and stops")
            }

            // No offset passes unreported work, and everything reported is committed: a member whose assignment was
            // lost commits its finished work when its partitions come back, or explicitly once they went to another
            // member; a commit the group refuses while it rebalances goes again when the member's round ends.
            try await BoundedShutdownTests.expectNothingUnfinishedCommitted(group: group, fixture: fixture)
            let results = try await fixture.readAll(fixture.resultsTopic)
            var reportedEnd: [TopicPartition: Int64] = [:]
            for event in try results.map(ReadEvent.init) {
                for request in event.requests {
                    let partition = TopicPartition(topic: request.topic, partition: request.partition)
                    reportedEnd[partition] = max(reportedEnd[partition] ?? 0, request.offset + 1)
                }
            }
            #expect(!reportedEnd.isEmpty)
            let committed = try await fixture.committedOffsets(group: group)
            let covered = reportedEnd.filter { committed[$0.key] == .some($0.value) }.count
            let lost = logs.recorded.filter { $0.contains("Partitions revoked") && $0.contains("lost=true") }
            let orphanCommits = logs.recorded.filter { $0.contains("now owned by another member") }
            print(
                "three members stopped at once: \(covered) of \(reportedEnd.count) partitions committed to what was reported; \(lost.count) assignments lost, \(orphanCommits.count) commits for partitions owned by another member"
            )
            #expect(
                covered == reportedEnd.count,
                "every partition committed to what was reported: \(committed) against \(reportedEnd); \(logs.recorded.filter { $0.contains("ommit") || $0.contains("Partitions") })"
            )
            await fixture.simulator.shutdown()
        }

        // MARK: - Graceful shutdown

        @Test func aGracefulShutdownFinishesInFlightJobsAndTheNextRunRepeatsNothing() async throws {
            let fixture = try await PipelineFixture(simulator: Self.steadySimulator())
            let count = 3000
            let (requestIDs, ends) = try await Self.produceDistinctRequests(count, fixture: fixture)
            let group = "purger-\(UUID())"
            let settings = try fixture.settings(group: group, batchMaxSize: 25, maxInFlight: 4)

            // Held jobs keep the first worker's jobs in flight until the shutdown has begun.
            fixture.simulator.holdJobs()
            let first = RunningWorker(fixture.worker(settings))
            #expect(await eventually { fixture.simulator.heldJobCount > 0 }, "jobs are in flight at the shutdown")
            await first.triggerShutdown()
            fixture.simulator.releaseJobs()
            #expect(await first.ended(within: .seconds(60))?.succeeded == true)
            #expect(first.worker.inFlightCount == 0, "in-flight jobs finished")
            let committed = try await fixture.committedOffsets(group: group).compactMapValues { $0 }
            let done = committed.values.reduce(0, +)
            #expect(done > 0 && done < Int64(count), "the shutdown came mid-run")

            // Everything reported by the first run is below its committed offsets, and everything below is reported.
            let firstResults = try await fixture.read(fixture.resultsTopic, timeout: .seconds(30)) { messages in
                let positions = Set(messages.flatMap { (try? ReadEvent($0))?.requests ?? [] }.map(\.position))
                return committed.allSatisfy { partition, end in
                    (0..<end).allSatisfy { positions.contains("\(partition.partition)/\($0)") }
                }
            }
            let firstRequests = try firstResults.flatMap { try ReadEvent($0).requests }
            let beyond = firstRequests.filter { request in
                request.offset >= (committed[TopicPartition(topic: request.topic, partition: request.partition)] ?? 0)
            }
            #expect(beyond.isEmpty, "nothing reported stays uncommitted: \(beyond.prefix(3).map(\.position))")
            #expect(Set(firstRequests.map(\.position)).count == Int(done), "everything committed is reported")

            let second = RunningWorker(fixture.worker(settings))
            let results = try await fixture.read(fixture.resultsTopic, timeout: .seconds(90)) {
                Set(reportedRequestIDs($0).keys).isSuperset(of: requestIDs)
            }
            #expect(await second.shutdown()?.succeeded == true)
            let reported = reportedRequestIDs(results)
            #expect(requestIDs.subtracting(reported.keys).isEmpty, "every request is reported")
            let repeated = reported.filter { $0.value > 1 }.keys
            #expect(repeated.isEmpty, "no request is reported twice: \(repeated.prefix(5))")
            try await Self.expectCommitted(ends, group: group, fixture: fixture)
            await fixture.simulator.shutdown()
        }

        // MARK: - Backpressure

        @Test func aSlowAPIPausesPartitionsBoundsPendingIdsAndKeepsTheMember() async throws {
            let fixture = try await PipelineFixture(
                simulator: PipelineFixture.fastSimulator(jobBaseDuration: .milliseconds(1500)))
            let count = 600
            let primary = distinctUploads(fixture, count: count / 2)
            let staging = distinctUploads(fixture, count: count / 2, environment: "staging")
            let values = (0..<count).map { index in
                index % 2 == 0
                    ? requestJSON(id: "req-\(index)", uploads: [primary[index / 2]], environment: nil)
                    : requestJSON(id: "req-\(index)", uploads: [staging[index / 2]], environment: "staging")
            }
            let producer = try fixture.producer()
            try await fixture.produce(values, with: producer)
            await producer.close()
            let requestIDs = Set((0..<count).map { "req-\($0)" })

            let group = "purger-\(UUID())"
            let batchMaxSize = 20
            let settings = try fixture.settings(
                group: group, batchMaxSize: batchMaxSize, maxInFlight: 2,
                kafkaProperties: ["max.poll.interval.ms": "6000"])
            let recorder = LogRecorder()
            let running = RunningWorker(fixture.worker(settings, logger: recorder.logger(level: .info)))
            let started = ContinuousClock.now

            let results = try await fixture.read(fixture.resultsTopic, timeout: .seconds(90)) {
                Set(reportedRequestIDs($0).keys).isSuperset(of: requestIDs)
            }
            // Stay well past max.poll.interval.ms, so that a member that stopped polling would have been evicted.
            _ = await eventually(timeout: .seconds(30)) { ContinuousClock.now - started > .seconds(8) }
            let linesBeforeShutdown = recorder.recorded
            #expect(await running.shutdown()?.succeeded == true)

            let worker = running.worker
            print(
                "slow API: \(worker.pauseCount) pauses, max pending ids \(worker.peakPendingCount), "
                    + "max jobs running \(worker.peakRunningJobs), run \(ContinuousClock.now - started)")
            #expect(worker.pauseCount > 0, "partitions were paused")
            #expect(worker.peakPendingCount <= batchMaxSize * 2, "pending ids stay within one batch per environment")
            #expect(worker.peakRunningJobs <= 2, "never more jobs than the bound")
            let revocations = linesBeforeShutdown.filter { $0.contains("Partitions revoked") || $0.contains("MAXPOLL") }
            #expect(revocations.isEmpty, "the member was never evicted: \(revocations.prefix(3))")
            let reported = reportedRequestIDs(results)
            #expect(requestIDs.subtracting(reported.keys).isEmpty)
            #expect(reported.values.allSatisfy { $0 == 1 }, "no request repeated")
            let consumed = try await fixture.read(fixture.requestsTopic) { $0.count >= count }
            try await Self.expectCommitted(fixture.endOffsets(of: consumed), group: group, fixture: fixture)
            await fixture.simulator.shutdown()
        }

        // MARK: - Rejected token

        @Test func aRejectedTokenStopsTheWorkerWithoutCommittingUnfinishedWork() async throws {
            let fixture = try await PipelineFixture()
            let uploads = distinctUploads(fixture, count: 200)
            var records: [(key: [UInt8]?, value: [UInt8]?)] = (0..<3).map {
                (Array("bad-\($0)".utf8), Array("nope".utf8))
            }
            records += (0..<200).map {
                (Array("k-\($0)".utf8), requestJSON(id: "req-\($0)", uploads: [uploads[$0]], environment: nil))
            }
            let producer = try fixture.producer()
            let reports = try await fixture.produce(records: records, with: producer)
            await producer.close()
            var firstValid: [TopicPartition: Int64] = [:]
            for report in reports[3...] {
                firstValid[report.topicPartition] = min(firstValid[report.topicPartition] ?? .max, report.offset)
            }

            let group = "purger-\(UUID())"
            let running = RunningWorker(
                fixture.worker(try fixture.settings(group: group), client: fixture.client(token: "e2e-wrong-token")))
            let ended = await running.ended(within: .seconds(60))
            guard case .failure(let error) = ended else {
                Issue.record("the worker did not fail: \(String(describing: ended))")
                return
            }
            guard case .tokenRejected = error as? WorkerError else {
                Issue.record("the worker failed with \(error), not tokenRejected")
                return
            }
            let committed = try await fixture.committedOffsets(group: group)
            for (partition, offset) in committed {
                guard let offset else { continue }
                #expect(
                    offset <= firstValid[partition] ?? .max,
                    "partition \(partition) committed \(offset), past unfinished request at \(firstValid[partition]!)")
            }
            #expect(fixture.simulator.deletedUploadIDs(environment: nil).isEmpty)
            #expect(fixture.simulator.stats().jobsStarted == 0)
            await fixture.simulator.shutdown()
        }
    }
}

extension ReadEvent.Request {
    /// `partition/offset`, for comparing positions.
    var position: String { "\(partition)/\(offset)" }
}
