import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging

/// The `replicas` scenario: several `upload-purger run` child processes in one consumer group, sharing one API
/// token on one simulator, working through a backlog (saturation).
///
/// The requests (the strategies' workload: 1 to `--max-ids-per-request` distinct deletable ids each) are produced
/// before the children start; the scenario ends when every request has a completion event on the results topic,
/// (or, with `stopAfter`, when that many are, mid-run), then stops every child with SIGTERM at the same moment, as a
/// full restart does, reads every event the drains published, and compares the group's committed offsets with what
/// the events report: every partition should be committed to exactly what was reported. Throughput is uploads
/// deleted ÷ (last `completed_at` − children started), so it includes the group forming; 429s and polls come from
/// the simulator's counters.
struct BenchReplicas {
    var replicas: Int
    var environment: BenchEnvironment
    var partitions: Int32
    var rateLimitText: String
    var workerEnvironment: [String: String]
    var logger: Logger
    /// Stop the children once this many requests are reported, instead of all.
    var stopAfter: Int?

    /// What the scenario measured.
    struct Result: Sendable, Codable {
        var replicas: Int
        var requests: Int
        var uploads: Int
        var partitions: Int32
        var complete: Bool
        var deleted: Int
        var failed: Int
        var events: Int
        var apiRequests: Int
        var rateLimited: Int
        var requestsBeforeReset: Int
        var maxRequestsInWindow: Int
        var jobs: Int
        var pollsPerJob: Double
        var wallSeconds: Double
        var deletionsPerSecond: Double
        /// Deletions per second while the middle 80 % of the uploads were deleted (from the per-second samples):
        /// the rate once the group has formed and before the backlog runs dry on some members.
        var middleDeletionsPerSecond: Double
        var ceilingPerSecond: Double
        var doubleDeletions: Int
        var exitStatuses: [Int32?]
        /// Requests reported when the children were stopped (all of them unless `stopAfter`).
        var reportedAtStop: Int
        /// Whether the children were stopped mid-run (`stopAfter` below the number of requests).
        var stoppedMidRun: Bool
        /// Deletions the events report, the drains' included: the simulator's deletions, if every one was told.
        var reportedDeletions: Int
        /// Partitions whose committed offset is exactly where the reported requests end, once every child stopped.
        var partitionsCommittedToReported: Int
        /// Reported requests at or past the committed offsets: what the next start does again.
        var reportedNotCommitted: Int
        /// Requests below the committed offsets that no event reports: work the group will never do (must be 0).
        var committedNotReported: Int
        var peakResidentBytes: [Int]
        var logDirectory: String
        var samples: [BenchSampler.Sample]

        var ceilingRatio: Double { deletionsPerSecond / max(ceilingPerSecond, 0.001) }
        var rateLimitedShare: Double { Double(rateLimited) / Double(max(apiRequests, 1)) }
    }

    func run() async throws -> Result {
        let uploads = environment.sizes.reduce(0, +)
        let fixtures = try await environment.startFixtures(requestPartitions: partitions, logger: logger)
        let (cluster, simulator, baseURL, token) = (
            fixtures.cluster, fixtures.simulator, fixtures.baseURL, fixtures.token
        )
        let workload = BenchWorkload(sizes: environment.sizes, pool: simulator.uploadIDs(environment: nil))
        let stamp = ISO8601DateFormatter().string(from: Date())
        let requests = workload.requests
        try await BenchTopic.produce(
            count: requests.count, topic: BenchFixtures.requestsTopic, partitions: partitions,
            bootstrapServers: cluster.bootstrapServers,
            logger: logger
        ) { index in BenchWorkload.value(of: requests[index], requestedAt: stamp) }

        let logDirectory = try BenchWorkerProcess.logDirectory()
        let childEnvironment = BenchWorkerProcess.environment(
            bootstrapServers: cluster.bootstrapServers, token: token, baseURL: baseURL, rateLimit: rateLimitText,
            extra: workerEnvironment)
        let collector = BenchCollector()
        let sampler = BenchSampler()
        let started = ContinuousClock.now
        let startedWall = Date()
        let workers = try (0..<replicas).map { index in
            try BenchWorkerProcess(environment: childEnvironment, logPath: "\(logDirectory)/worker-\(index + 1).log")
        }
        BenchReport.progress("bench: \(replicas) workers started (logs: \(logDirectory))")
        let complete = try await withThrowingTaskGroup(of: Bool?.self) { tasks in
            tasks.addTask {
                await sampler.run(simulator: simulator, start: started)
                return nil
            }
            tasks.addTask {
                while !Task.isCancelled {
                    for worker in workers { worker.sampleMemory() }
                    do { try await Task.sleep(for: .milliseconds(500)) } catch { break }
                }
                return nil
            }
            tasks.addTask {
                try await collector.follow(
                    topic: BenchFixtures.resultsTopic, bootstrapServers: cluster.bootstrapServers,
                    expected: min(stopAfter ?? requests.count, requests.count),
                    timeout: environment.timeout, logger: logger)
            }
            var complete = false
            while let result = try await tasks.next() {
                guard let done = result else { continue }
                complete = done
                sampler.take(simulator: simulator, start: started)
                tasks.cancelAll()
            }
            return complete
        }
        let reportedAtStop = collector.snapshot().completedAt.count
        for worker in workers { worker.signal(SIGTERM) }
        var exitStatuses: [Int32?] = []
        for worker in workers { exitStatuses.append(await worker.waitForExit(timeout: .seconds(40))) }
        let stats = simulator.stats()
        await simulator.shutdown()
        // Every event, those the drains published included: read until the topic has been quiet for a while.
        let everything = BenchCollector()
        _ = try await everything.follow(
            topic: BenchFixtures.resultsTopic, bootstrapServers: cluster.bootstrapServers, expected: .max,
            timeout: .seconds(5), logger: logger)
        let told = everything.snapshot()
        let commits = try await Self.committedAgainstReported(
            told.reportedOffsets, group: childEnvironment["KAFKA_GROUP_ID"] ?? "upload-purger",
            partitions: partitions, bootstrapServers: cluster.bootstrapServers, logger: logger)

        let tally = collector.snapshot()
        let wall = max((tally.lastCompletion ?? Date()).timeIntervalSince(startedWall), 0.001)
        let pollsPerJob = stats.pollsPerNoticedJob
        let perSecond = Double(environment.rateLimit.requests) / environment.rateLimit.window.secondsValue
        return Result(
            replicas: replicas, requests: requests.count, uploads: uploads, partitions: partitions,
            complete: complete && tally.completedAt.count >= min(stopAfter ?? requests.count, requests.count),
            deleted: stats.deletions,
            failed: tally.failed, events: tally.events,
            apiRequests: stats.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) },
            rateLimited: stats.rateLimited, requestsBeforeReset: stats.requestsBeforeReset,
            maxRequestsInWindow: stats.maxRequestsInWindow, jobs: stats.jobsStarted, pollsPerJob: pollsPerJob,
            wallSeconds: wall, deletionsPerSecond: Double(stats.deletions) / wall,
            middleDeletionsPerSecond: BenchSampler.deletionRate(
                sampler.series, total: stats.deletions, from: 0.1, to: 0.9, minimumSeconds: 0) ?? 0,
            ceilingPerSecond: perSecond * Double(CMAClient.maximumBulkSize) / (1 + pollsPerJob),
            doubleDeletions: stats.doubleDeletions, exitStatuses: exitStatuses,
            reportedAtStop: reportedAtStop, stoppedMidRun: (stopAfter ?? requests.count) < requests.count,
            reportedDeletions: told.successful, partitionsCommittedToReported: commits.partitions,
            reportedNotCommitted: commits.reportedNotCommitted, committedNotReported: commits.committedNotReported,
            peakResidentBytes: workers.map(\.peakResidentBytes), logDirectory: logDirectory,
            samples: sampler.series)
    }

    /// How the group's committed offsets stand against the request offsets the events report.
    static func committedAgainstReported(
        _ reported: [Int32: Set<Int64>], group: String, partitions: Int32, bootstrapServers: String, logger: Logger
    ) async throws -> (partitions: Int, reportedNotCommitted: Int, committedNotReported: Int) {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: group),
            logger: logger)
        let all = (0..<partitions).map { TopicPartition(topic: BenchFixtures.requestsTopic, partition: $0) }
        let committed = try await consumer.committedOffsets(for: all)
        await consumer.close(timeout: .seconds(1))
        var result = (partitions: 0, reportedNotCommitted: 0, committedNotReported: 0)
        for partition in all {
            let offsets = reported[partition.partition] ?? []
            let end = (committed[partition] ?? nil) ?? 0
            let uncommitted = offsets.count { $0 >= end }
            let unreported = Int(end) - offsets.count { $0 < end }
            result.reportedNotCommitted += uncommitted
            result.committedNotReported += unreported
            if uncommitted == 0, unreported == 0 { result.partitions += 1 }
        }
        return result
    }
}
