import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Purger
import ServiceLifecycle
import Synchronization

/// The settings shared by every strategy of one `bench` invocation.
struct BenchEnvironment: Sendable {
    var sizes: [Int]
    var rateLimit: RateLimit
    var jobBase: Duration
    var jobPerUpload: Duration
    var jobJitter: Double
    var inUseFraction: Double
    /// Probability that an id of a request repeats one an earlier request named.
    var recurrence: Double = 0
    var naiveConcurrency: Int
    var timeout: Duration
    /// Jobs the simulated site runs at once (the rest queue); `nil` runs all at once.
    var maxConcurrentJobs: Int? = nil
    /// When set, every job started after this long takes twice as long.
    var slowDownAfter: Duration? = nil

    /// A fresh mock cluster and a simulator holding one upload per id of ``sizes``.
    func startFixtures(requestPartitions: Int32, logger: Logger) async throws -> BenchFixtures {
        try await BenchFixtures.start(
            requestPartitions: requestPartitions, uploads: sizes.reduce(0, +), inUseFraction: inUseFraction,
            rateLimit: rateLimit, jobBase: jobBase, jobPerUpload: jobPerUpload, jobJitter: jobJitter,
            maxConcurrentJobs: maxConcurrentJobs, logger: logger)
    }
}

/// What one strategy did, measured.
struct BenchResult: Sendable, Codable {
    var strategy: String
    var title: String
    var requests: Int
    var uploads: Int
    var complete: Bool
    var deleted: Int
    /// Outcomes as the completion events tell them.
    var reportedDeleted: Int
    var notFound: Int
    var failed: Int
    var events: Int
    var eventsWithFailures: Int
    var eventsNamingFailures: Int
    var inferredEvents: Int
    /// `GET /uploads` requests the simulator answered (lookups of which ids still exist).
    var lookups: Int
    var apiRequests: Int
    var rateLimited: Int
    var jobs: Int
    var pollsPerJob: Double
    var wallSeconds: Double
    var deletionsPerSecond: Double
    var ceilingPerSecond: Double
    var latencyP50Seconds: Double
    var latencyP99Seconds: Double
    var noticeDelayMeanSeconds: Double
    var noticeDelayMeanRatio: Double
    var jobDurationMeanSeconds: Double
    var cpuSeconds: Double
    var peakResidentBytes: Int
    var doubleDeletions: Int
    /// The worker's bound on jobs in flight, once a second (empty for the naive strategy).
    var inFlightBounds: [Int] = []
    var samples: [BenchSampler.Sample]

    var uploadsPerRequest: Double { Double(deleted) / Double(max(apiRequests, 1)) }
    var ceilingRatio: Double { deletionsPerSecond / max(ceilingPerSecond, 0.001) }
    /// Deletions per second at saturation: from 20 % to 80 % of the uploads deleted, interpolated in the per-second
    /// samples. Leaves out joining the group, the first jobs polled on the prior, and the drain at the end.
    var saturatedDeletionsPerSecond: Double? {
        // Under 5 s the stretch holds too few one-second samples (and too few jobs) to mean anything.
        BenchSampler.deletionRate(samples, total: uploads, from: 0.2, to: 0.8, minimumSeconds: 5)
    }
    var saturatedCeilingRatio: Double? { saturatedDeletionsPerSecond.map { $0 / max(ceilingPerSecond, 0.001) } }

    var rateLimitedShare: Double { Double(rateLimited) / Double(max(apiRequests, 1)) }
    var cpuPer100k: Double { cpuSeconds / Double(max(requests, 1)) * 100_000 }
}

/// Runs one strategy on a fresh mock cluster and simulator, with the same requests as every other strategy.
struct BenchRun {
    var strategy: BenchStrategy
    var environment: BenchEnvironment
    var logger: Logger

    func run() async throws -> BenchResult {
        let fixtures = try await environment.startFixtures(requestPartitions: 3, logger: logger)
        let (cluster, simulator, baseURL, token) = (
            fixtures.cluster, fixtures.simulator, fixtures.baseURL, fixtures.token
        )
        let workload = BenchWorkload(
            sizes: environment.sizes, pool: simulator.uploadIDs(environment: nil), recurrence: environment.recurrence)
        let uploads = workload.distinctIDs

        let requestedAt = Date()
        let stamp = {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.string(from: requestedAt)
        }()
        try await produce(workload.requests.map { BenchWorkload.value(of: $0, requestedAt: stamp) }, cluster: cluster)

        var configuration = try PurgerConfiguration.load(environment: [:])
        configuration.rateLimit = environment.rateLimit
        configuration = strategy.workerConfiguration(configuration)
        let client = CMAClient(
            configuration: strategy.clientConfiguration(
                CMAClientConfiguration(apiToken: APIToken(token), baseURL: baseURL, rateLimit: environment.rateLimit),
                jobResults: configuration.jobResults),
            logger: logger)
        let settings = PurgeWorker.Settings(configuration: configuration, bootstrapServers: cluster.bootstrapServers)

        let collector = BenchCollector()
        let sampler = BenchSampler()
        BenchResourceUsage.resetPeakResidentSize()
        let cpuBefore = BenchResourceUsage.cpuSeconds()
        let started = ContinuousClock.now
        let startedWall = Date()
        let bounds = BenchBounds()
        let complete = try await withThrowingTaskGroup(of: Bool?.self) { tasks in
            let group: ServiceGroup?
            if let slowDownAfter = environment.slowDownAfter {
                tasks.addTask {
                    // Cancelled when the run ends first: then nothing slows down.
                    if (try? await Task.sleep(for: slowDownAfter)) != nil { simulator.setJobDurationFactor(2) }
                    return nil
                }
            }
            if strategy.usesWorker {
                let worker = PurgeWorker(settings: settings, client: client, logger: logger)
                tasks.addTask {
                    // The bound on jobs in flight, once a second.
                    while (try? await Task.sleep(for: .seconds(1))) != nil {
                        bounds.samples.withLock { $0.append(worker.inFlightLimit) }
                    }
                    return nil
                }
                let serviceGroup = ServiceGroup(
                    configuration: ServiceGroupConfiguration(services: [worker], logger: logger))
                group = serviceGroup
                tasks.addTask {
                    try await serviceGroup.run()
                    return nil
                }
            } else {
                group = nil
                let naive = BenchNaivePipeline(
                    bootstrapServers: cluster.bootstrapServers, requestsTopic: BenchFixtures.requestsTopic,
                    resultsTopic: BenchFixtures.resultsTopic, client: client, concurrency: environment.naiveConcurrency,
                    expected: workload.requests.count, logger: logger)
                tasks.addTask {
                    try await naive.run()
                    return nil
                }
            }
            tasks.addTask {
                await sampler.run(simulator: simulator, start: started)
                return nil
            }
            tasks.addTask {
                let done = try await collector.follow(
                    topic: BenchFixtures.resultsTopic, bootstrapServers: cluster.bootstrapServers,
                    expected: workload.requests.count, expectedIDs: workload.distinctIDs, timeout: environment.timeout,
                    logger: logger)
                return done
            }
            var complete = false
            while let result = try await tasks.next() {
                guard let done = result else { continue }
                complete = done
                sampler.take(simulator: simulator, start: started)
                await group?.triggerGracefulShutdown()
                tasks.cancelAll()
            }
            return complete
        }
        let cpu = BenchResourceUsage.cpuSeconds() - cpuBefore
        let peak = BenchResourceUsage.peakResidentBytes()
        let stats = simulator.stats()
        await simulator.shutdown()

        let tally = collector.snapshot()
        let latencies = workload.requests.compactMap { tally.completedAt[$0.id]?.timeIntervalSince(requestedAt) }
            .sorted()
        let end = tally.lastCompletion ?? Date()
        let wall = max(end.timeIntervalSince(startedWall), 0.001)
        let noticed = stats.jobs.filter { $0.noticedAfterSeconds != nil }
        let pollsPerJob = stats.pollsPerNoticedJob
        let perSecond = Double(environment.rateLimit.requests) / environment.rateLimit.window.secondsValue
        return BenchResult(
            strategy: strategy.rawValue, title: strategy.title, requests: workload.requests.count, uploads: uploads,
            complete: complete, deleted: stats.deletions, reportedDeleted: tally.successful, notFound: tally.notFound,
            failed: tally.failed, events: tally.events, eventsWithFailures: tally.eventsWithFailures,
            eventsNamingFailures: tally.eventsNamingFailures, inferredEvents: tally.inferred,
            lookups: stats.requests["uploads"]?.values.reduce(0, +) ?? 0,
            apiRequests: stats.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) },
            rateLimited: stats.rateLimited, jobs: stats.jobsStarted, pollsPerJob: pollsPerJob, wallSeconds: wall,
            deletionsPerSecond: Double(stats.deletions) / wall,
            ceilingPerSecond: perSecond * Double(CMAClient.maximumBulkSize) / (1 + pollsPerJob),
            latencyP50Seconds: Self.quantile(latencies, 0.5), latencyP99Seconds: Self.quantile(latencies, 0.99),
            noticeDelayMeanSeconds: noticed.isEmpty
                ? 0
                : noticed.reduce(0) { $0 + ($1.noticedAfterSeconds! - $1.durationSeconds) } / Double(noticed.count),
            noticeDelayMeanRatio: stats.meanNoticeDelayRatio,
            jobDurationMeanSeconds: noticed.isEmpty
                ? 0 : noticed.reduce(0) { $0 + $1.durationSeconds } / Double(noticed.count),
            cpuSeconds: cpu, peakResidentBytes: peak, doubleDeletions: stats.doubleDeletions,
            inFlightBounds: bounds.samples.withLock { $0 }, samples: sampler.series)
    }

    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)]
    }

    private func produce(_ values: [[UInt8]], cluster: MockCluster) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, value) in values.enumerated() {
                if index >= 1_000 { try await group.next() }
                group.addTask {
                    _ = try await producer.send(
                        KafkaRecord(topic: BenchFixtures.requestsTopic, key: Array("\(index)".utf8), value: value))
                }
            }
            try await group.waitForAll()
        }
        await producer.close()
    }
}

/// The worker's bound on jobs in flight, sampled once a second.
final class BenchBounds: Sendable {
    let samples = Mutex<[Int]>([])
}

extension Duration {
    /// The duration in seconds.
    var secondsValue: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
