import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Purger
import ServiceLifecycle
import Synchronization

/// The `consume` scenario: how fast the worker gets through a topic when nothing outside it holds it back, against
/// a plain consumer that reads the same topic and does nothing with it.
///
/// - **plain**: the project's `KafkaConsumer` in the worker's shape (polls of up to 200 messages, 100 ms timeout),
///   in a new consumer group from the earliest offset, counted from the first message to the last, so that joining
///   the group is not part of it.
/// - **worker**: the real `PurgeWorker` in this process (shipped defaults, but a 100 ms batch wait, so that the
///   last partial batch does not wait 2 s), in a new consumer group, against a fresh simulator holding every id of
///   the topic, with no effective rate limit (100,000 requests / 100 ms) and instant jobs, and a client whose first
///   poll goes out at once. Everything the worker does is in the figure: decoding, batching, offset bookkeeping,
///   the bulk-destroy and job-result requests over loopback HTTP, the completion events, the offset commits. It is
///   counted from the earliest `first_enqueued_at` to the latest `completed_at` of the completion events, so
///   joining the group is not part of it either.
///
/// Each run reads the topic once each way, alternating which goes first.
struct BenchConsume {
    var requests: Int
    var maxIDsPerRequest: Int
    var partitions: Int32
    var runs: Int
    /// Settings for the worker, as `NAME=VALUE` environment variables over the scenario's own (`--worker-env`).
    var workerEnvironment: [String: String] = [:]
    var logger: Logger

    /// The simulator's budget: no worker gets near it.
    static let unlimited = RateLimit(requests: 100_000, window: .milliseconds(100))

    /// One reading of the whole topic.
    struct Reading: Sendable, Codable {
        var messagesPerSecond: Double
        /// Whole-process CPU seconds per 100,000 messages: the mock broker serving the fetches included, and for the
        /// worker the simulator and the results reader too.
        var cpuPer100k: Double
    }

    /// One pair of readings, side by side.
    struct Run: Sendable, Codable {
        var plain: Reading
        /// The worker's reading (the field keeps the name it had when it measured a copy of the worker's path).
        var pipeline: Reading
        var ratio: Double { pipeline.messagesPerSecond / max(plain.messagesPerSecond, 0.001) }
    }

    /// What the scenario measured.
    struct Result: Sendable, Codable {
        var requests: Int
        var uploads: Int
        var partitions: Int32
        var meanValueBytes: Double
        var runs: [Run]
        /// Completion events (batches) the worker published per reading, and the ids they carried (every id of the
        /// topic).
        var batchesPerReading: Int
        var idsPerReading: Int
        var complete: Bool

        var medianPlain: Double { BenchConsume.median(runs.map(\.plain.messagesPerSecond)) }
        var medianPipeline: Double { BenchConsume.median(runs.map(\.pipeline.messagesPerSecond)) }
        var medianRatio: Double { BenchConsume.median(runs.map(\.ratio)) }
    }

    func run() async throws -> Result {
        let cluster = try BenchFixtures.startCluster(requestPartitions: partitions, logger: logger)
        let sizes = BenchWorkload.sizes(count: requests, maxIDsPerRequest: maxIDsPerRequest, seed: 2026)
        let uploads = sizes.reduce(0, +)
        let token = "bench-\(UUID().uuidString)"
        func simulator() -> CMASimulator {
            BenchFixtures.makeSimulator(
                token: token, uploads: uploads, inUseFraction: 0, rateLimit: Self.unlimited, jobBase: .zero,
                jobPerUpload: .zero, jobJitter: 0)
        }
        BenchReport.progress("bench: seeding the simulator with \(uploads) uploads…")
        var nextSimulator: CMASimulator? = simulator()
        let pool = nextSimulator!.uploadIDs(environment: nil)
        let workload = BenchWorkload(sizes: sizes, pool: pool)
        // The simulator's seeded legacy (decimal) ids can repeat; a repeated id is deleted once and then fails.
        let distinctIDs = Set(pool).count
        let stamp = ISO8601DateFormatter().string(from: Date())
        let totalBytes = Atomic<Int>(0)
        let requests = workload.requests
        BenchReport.progress("bench: producing \(self.requests) requests to \(partitions) partitions…")
        try await BenchTopic.produce(
            count: requests.count, topic: BenchFixtures.requestsTopic, partitions: partitions,
            bootstrapServers: cluster.bootstrapServers, logger: logger
        ) { index in
            let value = BenchWorkload.value(of: requests[index], requestedAt: stamp)
            totalBytes.add(value.count, ordering: .relaxed)
            return value
        }
        var runs: [Run] = []
        var complete = true
        var batches = 0
        var ids = 0
        while runs.count < self.runs {
            let workerFirst = runs.count % 2 == 1
            var plain: Reading?
            var worker: Reading?
            for useWorker in workerFirst ? [true, false] : [false, true] {
                if useWorker {
                    // Every reading deletes every id, so each gets a fresh simulator (same seed, same ids).
                    let fresh = nextSimulator ?? simulator()
                    nextSimulator = nil
                    let (reading, counts) = try await readWithWorker(
                        cluster: cluster, simulator: fresh, token: token, uploads: uploads, reading: runs.count + 1)
                    worker = reading
                    batches = counts.batches
                    ids = counts.ids
                    complete =
                        complete && counts.messages == requests.count && counts.ids == uploads
                        && counts.deleted == distinctIDs && counts.doubleDeletions == 0
                        && fresh.uploadIDs(environment: nil) == pool
                } else {
                    let (reading, counts) = try await readPlain(cluster: cluster)
                    plain = reading
                    complete = complete && counts.messages == requests.count
                }
            }
            let run = Run(plain: plain!, pipeline: worker!)
            BenchReport.progress(
                "bench:   run \(runs.count + 1): plain \(BenchReport.format(run.plain.messagesPerSecond, 0)) msg/s, "
                    + "worker \(BenchReport.format(run.pipeline.messagesPerSecond, 0)) msg/s, "
                    + "ratio \(BenchReport.format(run.ratio, 3))")
            runs.append(run)
        }
        return Result(
            requests: requests.count, uploads: uploads, partitions: partitions,
            meanValueBytes: Double(totalBytes.load(ordering: .relaxed)) / Double(max(requests.count, 1)), runs: runs,
            batchesPerReading: batches, idsPerReading: ids, complete: complete)
    }

    /// What one reading got through.
    struct Counts {
        /// Messages read (plain), or requests reported in completion events (worker).
        var messages = 0
        /// Completion events (worker).
        var batches = 0
        /// Ids the completion events carried (worker).
        var ids = 0
        /// Uploads the simulator deleted, and deleted again (worker).
        var deleted = 0
        var doubleDeletions = 0
    }

    /// Reads the whole topic in a new group, doing nothing with the messages.
    private func readPlain(cluster: MockCluster) async throws -> (Reading, Counts) {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: cluster.bootstrapServers, groupID: "bench-consume-\(UUID().uuidString)"),
            logger: logger)
        try consumer.subscribe(topics: [BenchFixtures.requestsTopic])
        var counts = Counts()
        var first: (at: ContinuousClock.Instant, count: Int, cpu: Double)?
        let deadline = ContinuousClock.now.advanced(by: .seconds(300))
        while counts.messages < requests, ContinuousClock.now < deadline {
            let messages = try await consumer.poll(maxMessages: 200, timeout: .milliseconds(100))
            if first == nil, !messages.isEmpty {
                first = (ContinuousClock.now, messages.count, BenchResourceUsage.cpuSeconds())
            }
            counts.messages += messages.count
        }
        let end = ContinuousClock.now
        let cpu = BenchResourceUsage.cpuSeconds()
        await consumer.close(timeout: .seconds(2))
        guard let first, counts.messages > first.count else {
            return (Reading(messagesPerSecond: 0, cpuPer100k: 0), counts)
        }
        let measured = Double(counts.messages - first.count)
        return (
            Reading(
                messagesPerSecond: measured / max((end - first.at).secondsValue, 0.001),
                cpuPer100k: (cpu - first.cpu) / measured * 100_000),
            counts
        )
    }

    /// Runs a `PurgeWorker` in a new group on the topic, against `simulator`, until every request and all
    /// `uploads` ids are in completion events on a results topic of this reading's own, then shuts it down.
    private func readWithWorker(
        cluster: MockCluster, simulator: CMASimulator, token: String, uploads: Int, reading: Int
    ) async throws -> (Reading, Counts) {
        let resultsTopic = "\(BenchFixtures.resultsTopic)-\(reading)"
        try cluster.createTopic(resultsTopic, partitions: 3)
        let baseURL = try await simulator.start()
        var configuration = try PurgerConfiguration.load(
            environment: ["PURGER_BATCH_MAX_WAIT_MS": "100"].merging(workerEnvironment) { _, given in given }.merging([
                "KAFKA_GROUP_ID": "bench-consume-\(UUID().uuidString)", "PURGER_RESULTS_TOPIC": resultsTopic,
            ]) { _, own in own })
        configuration.rateLimit = Self.unlimited
        let client = CMAClient(
            configuration: CMAClientConfiguration(
                apiToken: APIToken(token), baseURL: baseURL, rateLimit: Self.unlimited,
                pollSchedule: PollScheduler.Configuration(priorBase: .zero, priorPerUpload: .zero)),
            logger: logger)
        let worker = PurgeWorker(
            settings: PurgeWorker.Settings(configuration: configuration, bootstrapServers: cluster.bootstrapServers),
            client: client, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: logger))
        let collector = BenchCollector()
        let cpuBefore = BenchResourceUsage.cpuSeconds()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                _ = try await collector.follow(
                    topic: resultsTopic, bootstrapServers: cluster.bootstrapServers, expected: requests,
                    expectedIDs: uploads, timeout: .seconds(600), logger: logger)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let cpu = BenchResourceUsage.cpuSeconds() - cpuBefore
        let stats = simulator.stats()
        await simulator.shutdown()
        let tally = collector.snapshot()
        let counts = Counts(
            messages: tally.completedAt.count, batches: tally.events, ids: tally.ids,
            deleted: stats.deletions, doubleDeletions: stats.doubleDeletions)
        guard let start = tally.firstEnqueued, let end = tally.lastCompletion, counts.messages > 0 else {
            return (Reading(messagesPerSecond: 0, cpuPer100k: 0), counts)
        }
        return (
            Reading(
                messagesPerSecond: Double(counts.messages) / max(end.timeIntervalSince(start), 0.001),
                cpuPer100k: cpu / Double(counts.messages) * 100_000),
            counts
        )
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
