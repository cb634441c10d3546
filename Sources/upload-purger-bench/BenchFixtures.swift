import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging

/// A fresh mock cluster and CMA simulator for one benchmark run: the same setup for every strategy and scenario
/// that runs the worker.
struct BenchFixtures {
    /// The contract's default topic names, which the benchmark's workers use.
    static let requestsTopic = "upload-deletion-requests"
    static let resultsTopic = "upload-deletion-results"
    static let deadLetterTopic = "upload-deletion-requests.dlq"

    let cluster: MockCluster
    let simulator: CMASimulator
    let baseURL: String
    /// A new token per run, so that no budget is shared between runs.
    let token: String

    /// Starts a one-broker mock cluster with the three topics (`requestPartitions` for requests) and a simulator on
    /// a loopback port holding `uploads` uploads in the primary environment.
    static func start(
        requestPartitions: Int32, uploads: Int, inUseFraction: Double, rateLimit: RateLimit, jobBase: Duration,
        jobPerUpload: Duration, jobJitter: Double, maxConcurrentJobs: Int? = nil, logger: Logger
    ) async throws -> BenchFixtures {
        let cluster = try startCluster(requestPartitions: requestPartitions, logger: logger)
        let token = "bench-\(UUID().uuidString)"
        let simulator = makeSimulator(
            token: token, uploads: uploads, inUseFraction: inUseFraction, rateLimit: rateLimit, jobBase: jobBase,
            jobPerUpload: jobPerUpload, jobJitter: jobJitter, maxConcurrentJobs: maxConcurrentJobs)
        let baseURL = try await simulator.start()
        return BenchFixtures(cluster: cluster, simulator: simulator, baseURL: baseURL, token: token)
    }

    /// A one-broker mock cluster with the three topics, `requestPartitions` for the requests.
    static func startCluster(requestPartitions: Int32, logger: Logger) throws -> MockCluster {
        let cluster = try MockCluster(brokers: 1, logger: logger)
        try cluster.createTopic(requestsTopic, partitions: requestPartitions)
        try cluster.createTopic(resultsTopic, partitions: 3)
        try cluster.createTopic(deadLetterTopic, partitions: 1)
        return cluster
    }

    /// A simulator, not started yet, accepting `token` and holding `uploads` uploads in the primary environment.
    /// The seed is fixed, so every simulator made with the same `uploads` holds the same ids.
    static func makeSimulator(
        token: String, uploads: Int, inUseFraction: Double, rateLimit: RateLimit, jobBase: Duration,
        jobPerUpload: Duration, jobJitter: Double, maxConcurrentJobs: Int? = nil
    ) -> CMASimulator {
        var quiet = Logger(label: "upload-purger-bench.simulator")
        quiet.logLevel = .critical
        return CMASimulator(
            configuration: SimulatorConfiguration(
                apiToken: token, environments: [nil], uploadsPerEnvironment: uploads, inUseFraction: inUseFraction,
                seed: 42, rateLimit: rateLimit, jobBaseDuration: jobBase, jobPerUploadDuration: jobPerUpload,
                jobJitter: jobJitter, maxConcurrentJobs: maxConcurrentJobs),
            logger: quiet)
    }
}
