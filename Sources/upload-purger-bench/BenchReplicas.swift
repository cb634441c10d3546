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
/// then stops every child with SIGTERM at the same moment, as a full restart does, and reads where the group's
/// committed offsets stand against the end of each partition (everything is reported, so every partition should be
/// committed to its end). Throughput is uploads deleted ÷ (last `completed_at` − children started), so it includes
/// the group forming; 429s and polls come from the simulator's counters.
struct BenchReplicas {
    var replicas: Int
    var environment: BenchEnvironment
    var partitions: Int32
    var rateLimitText: String
    var workerEnvironment: [String: String]
    var logger: Logger

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
        /// Partitions whose committed offset is their end once every child stopped.
        var partitionsCommittedToEnd: Int
        /// Requests between the committed offsets and the ends of the partitions: what the next start redoes.
        var requestsBehindCommitted: Int64
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
                    expected: requests.count,
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
        for worker in workers { worker.signal(SIGTERM) }
        var exitStatuses: [Int32?] = []
        for worker in workers { exitStatuses.append(await worker.waitForExit(timeout: .seconds(40))) }
        let (committedToEnd, behind) = try await Self.committedAgainstEnds(
            group: childEnvironment["KAFKA_GROUP_ID"] ?? "upload-purger", partitions: partitions,
            bootstrapServers: cluster.bootstrapServers, logger: logger)
        let stats = simulator.stats()
        await simulator.shutdown()

        let tally = collector.snapshot()
        let wall = max((tally.lastCompletion ?? Date()).timeIntervalSince(startedWall), 0.001)
        let pollsPerJob = stats.pollsPerNoticedJob
        let perSecond = Double(environment.rateLimit.requests) / environment.rateLimit.window.secondsValue
        return Result(
            replicas: replicas, requests: requests.count, uploads: uploads, partitions: partitions,
            complete: complete && tally.completedAt.count == requests.count, deleted: stats.deletions,
            failed: tally.failed, events: tally.events,
            apiRequests: stats.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) },
            rateLimited: stats.rateLimited, requestsBeforeReset: stats.requestsBeforeReset,
            maxRequestsInWindow: stats.maxRequestsInWindow, jobs: stats.jobsStarted, pollsPerJob: pollsPerJob,
            wallSeconds: wall, deletionsPerSecond: Double(stats.deletions) / wall,
            middleDeletionsPerSecond: BenchSampler.deletionRate(
                sampler.series, total: stats.deletions, from: 0.1, to: 0.9, minimumSeconds: 0) ?? 0,
            ceilingPerSecond: perSecond * Double(CMAClient.maximumBulkSize) / (1 + pollsPerJob),
            doubleDeletions: stats.doubleDeletions, exitStatuses: exitStatuses,
            partitionsCommittedToEnd: committedToEnd, requestsBehindCommitted: behind,
            peakResidentBytes: workers.map(\.peakResidentBytes), logDirectory: logDirectory,
            samples: sampler.series)
    }

    /// How many partitions of the requests topic the group committed to their end, and how many requests the
    /// committed offsets stay behind in all.
    static func committedAgainstEnds(
        group: String, partitions: Int32, bootstrapServers: String, logger: Logger
    ) async throws -> (partitions: Int, behind: Int64) {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: group),
            logger: logger)
        let all = (0..<partitions).map { TopicPartition(topic: BenchFixtures.requestsTopic, partition: $0) }
        let committed = try await consumer.committedOffsets(for: all)
        let ends = try await consumer.endOffsets(of: all)
        await consumer.close(timeout: .seconds(1))
        let behind = all.map { max(0, (ends[$0] ?? 0) - ((committed[$0] ?? nil) ?? 0)) }
        return (behind.count { $0 == 0 }, behind.reduce(0, +))
    }
}
