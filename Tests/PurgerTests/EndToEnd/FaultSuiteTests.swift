import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

/// The fault suite: real `upload-purger run` processes killed with SIGKILL again and again while they work, a mock
/// broker taken down and request errors injected between kills, an API that fails in every documented way, and
/// fuzzed malformed messages among the requests; then an accounting of every produced message.
///
/// `./ops/test` runs it reduced; `./ops/fault-suite` runs it at full scale (`PURGER_FAULT_SUITE=full`).
@Suite("Fault suite", .serialized)
struct FaultSuiteTests {
    struct Scale: Sendable {
        var name: String
        var requests: Int
        var fuzzed: Int
        var kills: Int
        var uploadsPerEnvironment: Int
        /// Longest a worker may go without publishing anything before the suite gives up on it.
        var stallTimeout: Duration
        /// Longest the last worker may take to account for everything.
        var finishTimeout: Duration
        var timeLimit: TimeLimitTrait.Duration

        static var current: Scale {
            if ProcessInfo.processInfo.environment["PURGER_FAULT_SUITE"] == "full" {
                Scale(
                    name: "full", requests: 50_000, fuzzed: 10_000, kills: 20, uploadsPerEnvironment: 60_000,
                    stallTimeout: .seconds(180), finishTimeout: .seconds(1_800), timeLimit: .minutes(60))
            } else {
                Scale(
                    name: "reduced", requests: 3_000, fuzzed: 500, kills: 3, uploadsPerEnvironment: 30_000,
                    stallTimeout: .seconds(90), finishTimeout: .seconds(300), timeLimit: .minutes(10))
            }
        }
    }

    /// The API fault mix of the suite: 10% 5xx (half 500 with an HTML body, half transient 503), load-shedding 429s
    /// in bursts (each sends every request of the worker to wait for the reset), 2% lost POST responses, 1% failed
    /// jobs.
    static let apiFaults = SimulatorFaults(
        serverError500Html: 0.05, unavailable503Transient: 0.05, loadShedding429: 0.02, loadSheddingResetSeconds: 1,
        lostPostResponse: 0.02, failedJob500: 0.01)

    @Test(.timeLimit(Scale.current.timeLimit))
    func killedWorkersBrokerOutagesAPIFaultsAndFuzzedMessagesLoseNothing() async throws {
        let started = ContinuousClock.now
        let scale = Scale.current
        let fixture = try await PipelineFixture(
            partitions: 6,
            simulator: PipelineFixture.fastSimulator(uploads: scale.uploadsPerEnvironment, faults: Self.apiFaults))

        // Valid requests with fuzzed values spread among them, in a seeded order.
        let (valid, _, _) = PipelineEndToEndTests.generateRequests(count: scale.requests, fixture: fixture)
        let templates = (0..<50).map { index in
            let environment = index % 3 == 0 ? "staging" : nil
            let upload = fixture.simulator.uploadIDs(environment: environment)[scale.uploadsPerEnvironment - 1 - index]
            return FuzzedRequests.template(id: "fuzz-template-\(index)", upload: upload, environment: environment)
        }
        let fuzzed = FuzzedRequests.make(
            count: scale.fuzzed, templates: templates, validIDs: fixture.simulator.uploadIDs(environment: nil),
            seed: 99)
        var values: [(value: [UInt8]?, fuzzed: Bool)] = valid.map { ($0, false) } + fuzzed.map { ($0, true) }
        var shuffler = SplitMix64(seed: 5)
        values.shuffle(using: &shuffler)

        let producer = try fixture.producer()
        let reports = try await Self.produce(values.map { $0.value }, to: fixture.requestsTopic, with: producer)
        await producer.close()
        var produced: [SourcePosition: ProducedMessage] = [:]
        for (report, value) in zip(reports, values) {
            let position = SourcePosition(
                topic: report.topicPartition.topic, partition: report.topicPartition.partition, offset: report.offset)
            produced[position] = ProducedMessage(value: value.value, position: position, fuzzed: value.fuzzed)
        }
        #expect(produced.count == values.count)
        say("fault suite (\(scale.name)): produced \(produced.count) messages in \(ContinuousClock.now - started)")

        // One reader follows the results and dead-letter topics for the whole run.
        let reader = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: fixture.cluster.bootstrapServers, groupID: "fault-reader-\(UUID())",
                properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "300"]),
            logger: quietLogger)
        try reader.subscribe(topics: [fixture.resultsTopic, fixture.dlqTopic])
        var ledger = PublishedLedger(resultsTopic: fixture.resultsTopic, dlqTopic: fixture.dlqTopic)
        var run = RunRecord()

        // Each life of the worker: once it publishes, a Kafka fault; once it has accounted for a share of the
        // messages (new ones, not replays), kill -9. A worker that stops on its own is restarted and counted.
        let group = "fault-suite-\(UUID())"
        let environment = fixture.faultSuiteEnvironment(group: group)
        let share = produced.count / (2 * scale.kills + 2)
        var round = 0
        while run.kills < scale.kills, round < 2 * scale.kills {
            let worker = try WorkerProcess(arguments: ["run"], environment: environment)
            run.starts += 1
            let (accountedBefore, publishedBefore) = (ledger.accountedCount, ledger.published)
            var alive = try await Self.follow(
                reader, into: &ledger, until: { $0.published > publishedBefore }, worker: worker, scale: scale)
            if alive {
                try await Self.injectKafkaFault(round: round, fixture: fixture, run: &run) {
                    try await Self.follow(reader, into: &ledger, for: .seconds(2))
                }
                let target = min(accountedBefore + share, produced.count)
                alive = try await Self.follow(
                    reader, into: &ledger, until: { $0.accountedCount >= target }, worker: worker, scale: scale)
            }
            if alive {
                worker.signal(SIGKILL)
                run.kills += 1
            }
            let status = await worker.waitForExit(timeout: .seconds(20))
            if !alive { run.unplannedExit(status: status, worker: worker) }
            run.ended(worker)
            round += 1
            say(
                "fault suite (\(scale.name)): life \(round): accounted \(ledger.accountedCount) of "
                    + "\(produced.count), kills \(run.kills), \(ContinuousClock.now - started)")
        }

        // A last worker finishes the work and stops gracefully.
        let last = try WorkerProcess(arguments: ["run"], environment: environment)
        run.starts += 1
        let total = produced.count
        let finished = try await Self.follow(
            reader, into: &ledger, until: { $0.accountedCount >= total }, worker: last, scale: scale,
            overall: scale.finishTimeout)
        last.signal(SIGTERM)
        let lastStatus = await last.waitForExit(timeout: .seconds(60))
        run.ended(last)
        if lastStatus != 0 {
            say("fault suite: last worker ended with \(String(describing: lastStatus)):\n\(last.tail)")
        }
        try await Self.follow(reader, into: &ledger, for: .seconds(2))
        await reader.close(timeout: .seconds(2))

        // The reckoning.
        var deleted: [String?: Set<String>] = [:]
        var existing: [String?: Set<String>] = [:]
        for environment in fixture.simulator.configuration.environments {
            deleted[environment] = Set(fixture.simulator.deletedUploadIDs(environment: environment).map(\.rawValue))
            existing[environment] = Set(fixture.simulator.existingUploadIDs(environment: environment).map(\.rawValue))
        }
        let stats = fixture.simulator.stats()
        let accounting = FaultAccounting(
            produced: produced, ledger: ledger, deleted: deleted, existing: existing,
            doubleDeletions: stats.doubleDeletions, jobs: stats.jobs)
        let apiRequests = stats.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) }
        let faults = stats.faultsInjected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        say(
            """
            fault suite accounting (\(scale.name)): \(accounting.summary); worker starts \(run.starts), kill -9 \
            \(run.kills), unplanned exits \(run.unplannedExits), broker outages \(run.brokerOutages), produce \
            errors injected \(run.produceErrors), offset-commit errors injected \(run.commitErrors), records sent again after a retriable delivery failure \
            \(run.resends); API faults \
            \(faults.joined(separator: ", ")), 429s \(stats.rateLimited), lost POST responses \(stats.lostResponses), \
            jobs \(stats.jobsStarted), API requests \(apiRequests) (lookups \(stats.requests["uploads"]?.values.reduce(0, +) ?? 0)), \
            uploads deleted per API request \(String(format: "%.1f", Double(stats.deletions) / Double(max(apiRequests, 1)))); \
            wall time \(ContinuousClock.now - started)
            """)
        if !accounting.misroutedExamples.isEmpty { say("misrouted: \(accounting.misroutedExamples)") }

        #expect(finished, "the last worker accounted for everything within \(scale.finishTimeout)")
        #expect(lastStatus == 0)
        #expect(run.kills == scale.kills)
        #expect(run.unplannedExits == 0, "workers stopped on their own under transient faults")
        #expect(accounting.produced == scale.requests + scale.fuzzed)
        #expect(accounting.lost == 0)
        #expect(accounting.requestsMissingIDs == 0)
        #expect(accounting.misrouted == 0)
        #expect(accounting.fuzzedInvalid > scale.fuzzed / 2, "most fuzzed values are invalid")
        #expect(accounting.inconsistentEvents == 0 && ledger.undecodableEvents == 0)
        #expect(ledger.deadLettersWithoutSource == 0)
        #expect(accounting.doubleDeletions == 0)
        #expect(accounting.deletedUnreported == 0)
        #expect(accounting.deletedUnrequested == 0)
        #expect(accounting.reportedDeletedButExisting == 0)
        #expect(
            accounting.namedFailedButGone == 0,
            "ids named still present are present; replays never name failed what was deleted")
        #expect(accounting.exactCountMismatches == 0)
        #expect(accounting.exactSuccessful == accounting.exactJobDeletions)
        #expect(accounting.inferredOutOfBounds == 0)
        #expect(accounting.namingShare >= 0.99, "events with failures naming them")
        #expect(accounting.simulatorDeletions > 0)
        await fixture.simulator.shutdown()
    }

    // MARK: - Faults

    /// One Kafka fault per life of a worker, in turn: a broker down for a while, produce requests failing,
    /// offset commits failing. `during` runs while the fault lasts.
    static func injectKafkaFault(
        round: Int, fixture: PipelineFixture, run: inout RunRecord, during: () async throws -> Void
    ) async throws {
        switch round % 3 {
        case 0:
            let broker = Int32(round / 3 % 3 + 1)
            try fixture.cluster.setBrokerDown(broker)
            run.brokerOutages += 1
            do {
                try await during()
            } catch {
                try fixture.cluster.setBrokerUp(broker)
                throw error
            }
            try fixture.cluster.setBrokerUp(broker)
        case 1:
            let errors: [KafkaError.Code] = [
                .notLeaderForPartition, .requestTimedOut, .notEnoughReplicas, .leaderNotAvailable,
                .notEnoughReplicasAfterAppend, .networkException,
            ]
            fixture.cluster.pushRequestErrors(.produce, errors: errors)
            run.produceErrors += errors.count
            try await during()
        default:
            let errors: [KafkaError.Code] = [
                .coordinatorNotAvailable, .notCoordinator, .requestTimedOut, .coordinatorLoadInProgress,
            ]
            fixture.cluster.pushRequestErrors(.offsetCommit, errors: errors)
            run.commitErrors += errors.count
            try await during()
        }
    }

    /// What the suite did to the workers.
    struct RunRecord {
        var starts = 0
        var kills = 0
        var unplannedExits = 0
        var brokerOutages = 0
        var produceErrors = 0
        var commitErrors = 0
        var resends = 0

        mutating func ended(_ worker: WorkerProcess) {
            resends += worker.stderr.components(separatedBy: "Publishing failed; sending again").count - 1
        }

        mutating func unplannedExit(status: Int32?, worker: WorkerProcess) {
            unplannedExits += 1
            say("fault suite: a worker stopped on its own (status \(String(describing: status))):\n\(worker.tail)")
        }
    }

    // MARK: - Reading back

    /// Reads published messages into `ledger` until `done` holds; true while `worker` runs. Gives up (returning
    /// false after killing it) when the worker accounts for nothing new within the stall timeout, or when
    /// `overall` passes.
    static func follow(
        _ reader: KafkaConsumer, into ledger: inout PublishedLedger, until done: (PublishedLedger) -> Bool,
        worker: WorkerProcess, scale: Scale, overall: Duration? = nil
    ) async throws -> Bool {
        let deadline = overall.map { ContinuousClock.now + $0 }
        var lastProgress = (count: ledger.published, at: ContinuousClock.now)
        while !done(ledger) {
            guard worker.isRunning else { return false }
            ledger.absorb(try await reader.poll(maxMessages: 2_000, timeout: .milliseconds(200)))
            let now = ContinuousClock.now
            if ledger.published > lastProgress.count { lastProgress = (ledger.published, now) }
            if now - lastProgress.at > scale.stallTimeout || deadline.map({ now > $0 }) == true {
                say("fault suite: nothing published for \(now - lastProgress.at); the worker's log:\n\(worker.tail)")
                worker.signal(SIGKILL)
                return false
            }
        }
        return worker.isRunning
    }

    /// Reads published messages into `ledger` for `duration`.
    static func follow(_ reader: KafkaConsumer, into ledger: inout PublishedLedger, for duration: Duration)
        async throws
    {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            ledger.absorb(try await reader.poll(maxMessages: 2_000, timeout: .milliseconds(200)))
        }
    }

    // MARK: - Producing

    /// Produces `values` concurrently (keys `f-<index>`); returns where each one was stored, in order.
    static func produce(
        _ values: [[UInt8]?], to topic: String, with producer: KafkaProducer
    ) async throws -> [DeliveryReport] {
        try await withThrowingTaskGroup(of: (Int, DeliveryReport).self) { group in
            var reports: [DeliveryReport?] = Array(repeating: nil, count: values.count)
            for (index, value) in values.enumerated() {
                if index >= 1_000, let next = try await group.next() { reports[next.0] = next.1 }
                group.addTask {
                    let record = KafkaRecord(topic: topic, key: Array("f-\(index)".utf8), value: value)
                    return (index, try await producer.send(record))
                }
            }
            for try await (done, report) in group { reports[done] = report }
            return reports.compactMap { $0 }
        }
    }
}

/// Writes a line of the run log at once: `print` is block-buffered when the output is a pipe (`./ops/fault-suite`
/// tees it), and a long run should show its progress as it goes.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

extension PipelineFixture {
    /// The environment of the suite's worker processes: the fixture's topics and simulator, a group shared by
    /// every life of the worker, the default retry and timeout settings, and logs at `info`. Batches of 50 ids
    /// make four times the API calls of the default (more faults met) and spread the work over the lives.
    func faultSuiteEnvironment(group: String) -> [String: String] {
        processEnvironment(group: group, httpPort: 0).merging([
            "PURGER_LOG_LEVEL": "info", "PURGER_SHUTDOWN_TIMEOUT_S": "30", "PURGER_BATCH_MAX_SIZE": "50",
            "KAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS": "1000",
        ]) { $1 }
    }
}

extension WorkerProcess {
    /// The last lines the process wrote to standard error, for a failure message.
    var tail: String { stderr.split(separator: "\n").suffix(30).joined(separator: "\n") }
}
