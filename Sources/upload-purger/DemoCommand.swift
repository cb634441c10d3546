import ArgumentParser
import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Purger
import PurgerCommandLine
import ServiceLifecycle

/// `upload-purger demo`: the whole pipeline on embedded parts, with generated requests and a final accounting.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline on embedded parts: librdkafka's mock cluster and the CMA simulator.",
        discussion: """
            Needs no configuration. Produces a realistic mix of deletion requests (single and multi-id, repeated \
            ids, uploads in use, two environments, a few malformed messages), runs the real worker on them, \
            shows progress, and prints a summary. Exits 0 only if every request is accounted for, either in a \
            completion event or on the dead-letter topic, and the counts agree with the simulator's own record.
            """
    )

    @Option(help: "Deletion requests to produce.")
    var requests = 5_000

    @Option(help: "The API token's request budget, for the simulator and the worker.")
    var rateLimit = "60/3s"

    @Option(help: "Simulated job duration: a base in milliseconds...")
    var jobBaseMs = 800

    @Option(help: "...plus this many milliseconds per upload.")
    var jobPerUploadMs = 5

    @OptionGroup(title: "Faults")
    var faultOptions: FaultOptions

    @Option(help: "Give up after this many seconds.")
    var timeoutS = 600

    func validate() throws {
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1") }
        guard RateLimit(parsing: rateLimit) != nil else {
            throw ValidationError("--rate-limit must look like 60/3s")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(format: .text, level: .error)
        let logger = Logger(label: "upload-purger.demo")
        var quiet = Logger(label: "upload-purger.demo.simulator")
        quiet.logLevel = .critical
        let display = ProgressDisplay()
        let limit = RateLimit(parsing: rateLimit)!

        display.line("Starting librdkafka's mock cluster (3 brokers) and the CMA simulator")
        let cluster = try MockCluster(brokers: 3, logger: logger)
        let topics = (
            requests: "upload-deletion-requests", results: "upload-deletion-results",
            dlq: "upload-deletion-requests.dlq"
        )
        try cluster.createTopic(topics.requests, partitions: 3)
        try cluster.createTopic(topics.results, partitions: 3)
        try cluster.createTopic(topics.dlq, partitions: 1)
        let token = "demo-\(UUID().uuidString)"
        let simulator = CMASimulator(
            configuration: SimulatorConfiguration(
                apiToken: token, environments: [nil, "staging"], uploadsPerEnvironment: max(2_000, requests * 4),
                inUseFraction: 0.1, rateLimit: limit, jobBaseDuration: .milliseconds(jobBaseMs),
                jobPerUploadDuration: .milliseconds(jobPerUploadMs), jobJitter: 0.2,
                faults: faultOptions.faults),
            logger: quiet)
        let baseURL = try await simulator.start()

        let workload = DemoWorkload(
            count: requests, primary: simulator.uploadIDs(environment: nil),
            staging: simulator.uploadIDs(environment: "staging"))
        display.line(
            "Producing \(requests) requests (\(workload.distinctIDs) distinct ids, \(workload.malformed) malformed)")
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        try await produce(workload.values, to: topics.requests, with: producer)
        await producer.close()

        var configuration = try PurgerConfiguration.load(environment: [:])
        configuration.rateLimit = limit
        let client = CMAClient(
            configuration: CMAClientConfiguration(
                // The demo shows pushed results (`DATOCMS_JOB_RESULTS=auto`, as `run` by default): the
                // simulator serves Pusher's websocket on its own port.
                apiToken: APIToken(token), baseURL: baseURL, rateLimit: limit, jobResults: .auto,
                pushURL: CMASimulator.pushURL(baseURL: baseURL)),
            logger: logger)
        let worker = PurgeWorker(
            settings: PurgeWorker.Settings(configuration: configuration, bootstrapServers: cluster.bootstrapServers),
            client: client, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))

        let started = ContinuousClock.now
        let tally = DemoTally()
        let timeout = Duration.seconds(timeoutS)
        let accounted: Bool = try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return false
            }
            tasks.addTask {
                let done = try await tally.follow(
                    results: topics.results, dlq: topics.dlq, bootstrapServers: cluster.bootstrapServers,
                    until: { $0.isComplete(for: workload) }, timeout: timeout, logger: logger
                ) { tally in
                    display.progress(tally.progressLine(of: workload, elapsed: ContinuousClock.now - started))
                }
                await group.triggerGracefulShutdown()
                return done
            }
            var accounted = false
            for try await result in tasks { accounted = accounted || result }
            return accounted
        }
        let wall = ContinuousClock.now - started
        display.finishProgress()

        let stats = simulator.stats()
        let summary = tally.snapshot()
        let clientStats = client.statistics
        // Exact counts must match the simulator; inferred ones must bracket it (CONTRACT §3).
        let agrees =
            stats.doubleDeletions == 0
            && (summary.inferred == 0
                ? summary.successful == stats.deletions
                : (summary.successful...(summary.successful + summary.notFound + summary.failed))
                    .contains(stats.deletions))
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        display.line(
            """

            Summary
              requests             \(requests) (\(workload.valid.count) valid, \(workload.malformed) malformed)
              distinct ids         \(workload.distinctIDs)
              batches              \(summary.batches) (\(summary.byStatus.map { "\($0.value) \($0.key)" }.sorted().joined(separator: ", ")))
              deleted              \(summary.successful)
              not found            \(summary.notFound) (already deleted or never existed)
              still present        \(summary.failed) (in use by records, or refused)
              inferred counts      in \(summary.inferred) of \(summary.batches) batches (after a lost response, a failed job or lookup: CONTRACT §3)
              dead-lettered        \(summary.deadLettered)
              API requests         \(clientStats.totalRequests) (\(String(format: "%.1f", Double(summary.successful + summary.notFound + summary.failed) / Double(max(1, clientStats.totalRequests)))) ids per request)
              polls per job        \(String(format: "%.2f", clientStats.pollsPerFinishedJob))
              results pushed       \(clientStats.pushedResults) of \(clientStats.jobsFinished) jobs (the rest polled)
              429s                 \(stats.rateLimited)
              deletions per second \(String(format: "%.1f", Double(summary.successful) / max(seconds, 0.001)))
              wall time            \(String(format: "%.1f", seconds)) s
              simulator deletions  \(stats.deletions) (\(agrees ? "agrees with the events" : "DISAGREES with the events"))
            """)
        await simulator.shutdown()
        guard accounted, agrees else {
            display.line("Not every request was accounted for.")
            throw ExitCode(1)
        }
        display.line("Every request accounted for.")
    }

    private func produce(_ values: [[UInt8]], to topic: String, with producer: KafkaProducer) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, value) in values.enumerated() {
                if index >= 1_000 { try await group.next() }
                group.addTask {
                    _ = try await producer.send(KafkaRecord(topic: topic, key: Array("\(index)".utf8), value: value))
                }
            }
            try await group.waitForAll()
        }
    }
}
