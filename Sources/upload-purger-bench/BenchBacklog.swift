import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging

/// The `backlog` scenario: peak memory of one `upload-purger run` child process while a large backlog waits on its
/// topic.
///
/// Every request is produced to this process's mock cluster before the child starts. Each carries one upload id
/// (upstream keyed by upload id), so the simulator seeds exactly one upload per request and every deletion
/// succeeds: no failure lookups, a store of one id per request. The child's `VmRSS` and `VmHWM` are read from
/// `/proc/<pid>/status` every 200 ms until the backlog is drained or the duration has passed; then it is stopped
/// with SIGTERM and sampled until it exits.
struct BenchBacklog {
    var requests: Int
    var partitions: Int32
    var rateLimit: RateLimit
    var rateLimitText: String
    var jobBase: Duration
    var jobPerUpload: Duration
    var jobJitter: Double
    var duration: Duration
    var workerEnvironment: [String: String]
    var logger: Logger

    /// What the scenario measured.
    struct Result: Sendable, Codable {
        var requests: Int
        var partitions: Int32
        var workerEnvironment: [String: String]
        /// Seconds the child ran before it was told to stop.
        var runSeconds: Double
        var deleted: Int
        var deletionsPerSecond: Double
        var drained: Bool
        var peakResidentBytes: Int
        /// When the peak was first reached, seconds after the child started.
        var peakAfterSeconds: Double
        var residentAtStopBytes: Int
        var exitStatus: Int32?
        var doubleDeletions: Int
        var rateLimited: Int
        var logPath: String
        var memory: [BenchWorkerProcess.Memory]
        var samples: [BenchSampler.Sample]
    }

    func run() async throws -> Result {
        BenchReport.progress("bench: seeding the simulator with \(requests) uploads…")
        let fixtures = try await BenchFixtures.start(
            requestPartitions: partitions, uploads: requests, inUseFraction: 0, rateLimit: rateLimit, jobBase: jobBase,
            jobPerUpload: jobPerUpload, jobJitter: jobJitter, logger: logger)
        let (cluster, simulator, baseURL, token) = (
            fixtures.cluster, fixtures.simulator, fixtures.baseURL, fixtures.token
        )
        let pool = simulator.uploadIDs(environment: nil)
        let stamp = ISO8601DateFormatter().string(from: Date())
        BenchReport.progress("bench: producing \(requests) requests to \(partitions) partitions…")
        let produceStart = ContinuousClock.now
        try await BenchTopic.produce(
            count: requests, topic: BenchFixtures.requestsTopic, partitions: partitions,
            bootstrapServers: cluster.bootstrapServers,
            logger: logger
        ) { index in
            Array(
                #"{"request_id":"backlog-\#(index)","upload_ids":["\#(pool[index].rawValue)"],"requested_at":"\#(stamp)"}"#
                    .utf8)
        }
        BenchReport.progress(
            "bench:   produced in \(BenchReport.format((ContinuousClock.now - produceStart).secondsValue, 1)) s")

        let logPath = try BenchWorkerProcess.logDirectory() + "/worker.log"
        let worker = try BenchWorkerProcess(
            environment: BenchWorkerProcess.environment(
                bootstrapServers: cluster.bootstrapServers, token: token, baseURL: baseURL, rateLimit: rateLimitText,
                extra: workerEnvironment),
            logPath: logPath)
        BenchReport.progress(
            "bench: worker pid \(worker.processIdentifier) started (log: \(logPath)); sampling its memory…")
        let started = ContinuousClock.now
        let sampler = BenchSampler()
        let deadline = started.advanced(by: duration)
        var nextReport = started.advanced(by: .seconds(10))
        var drained = false
        var lastStats = ContinuousClock.now
        sampler.take(simulator: simulator, start: started)
        while ContinuousClock.now < deadline, worker.isRunning, !drained {
            worker.sampleMemory()
            try await Task.sleep(for: .milliseconds(200))
            if ContinuousClock.now - lastStats >= .seconds(1) {
                lastStats = ContinuousClock.now
                sampler.take(simulator: simulator, start: started)
                drained = (sampler.series.last?.deletions ?? 0) >= requests
            }
            if ContinuousClock.now >= nextReport {
                nextReport = nextReport.advanced(by: .seconds(10))
                let memory = worker.memory.last
                BenchReport.progress(
                    "bench:   \(Int((ContinuousClock.now - started).secondsValue)) s: "
                        + "\(sampler.series.last?.deletions ?? 0) deleted, RSS "
                        + "\(Self.megabytes(memory?.residentBytes ?? 0)), peak \(Self.megabytes(worker.peakResidentBytes))"
                )
            }
        }
        let runSeconds = (ContinuousClock.now - started).secondsValue
        let residentAtStop = worker.memory.last?.residentBytes ?? 0
        sampler.take(simulator: simulator, start: started)
        let deletedAtStop = sampler.series.last?.deletions ?? 0
        let exitStatus = await worker.stop(timeout: .seconds(40))
        let stats = simulator.stats()
        await simulator.shutdown()
        let memory = worker.memory
        let peak = worker.peakResidentBytes
        return Result(
            requests: requests, partitions: partitions, workerEnvironment: workerEnvironment, runSeconds: runSeconds,
            deleted: deletedAtStop, deletionsPerSecond: Double(deletedAtStop) / max(runSeconds, 0.001),
            drained: drained, peakResidentBytes: peak,
            peakAfterSeconds: memory.first(where: { $0.peakResidentBytes == peak })?.t ?? 0,
            residentAtStopBytes: residentAtStop, exitStatus: exitStatus, doubleDeletions: stats.doubleDeletions,
            rateLimited: stats.rateLimited, logPath: logPath, memory: memory, samples: sampler.series)
    }

    static func megabytes(_ bytes: Int) -> String { "\(BenchReport.format(Double(bytes) / 1_048_576, 0)) MB" }
}
