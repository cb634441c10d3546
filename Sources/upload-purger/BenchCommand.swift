import ArgumentParser
import DatoCMS
import Foundation
import Logging

/// `upload-purger bench`: the same requests through several strategies, each on a fresh mock cluster and simulator,
/// measured side by side in one process.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Compare request strategies on the same workload: API efficiency, throughput, latency, CPU, memory.",
        discussion: """
            Each strategy gets a fresh librdkafka mock cluster and CMA simulator with the same settings, the same \
            requests (every id distinct and deletable, all produced before the strategy starts: a backlog), and \
            runs until every request has a completion event. The simulator's own counters give requests, 429s, \
            polls and job timings; the results topic gives end-to-end latency; getrusage and /proc/self/status give \
            CPU and peak memory of the whole process (simulator and mock broker included).
            """
    )

    @Option(help: "Deletion requests per strategy.")
    var requests = 2_000

    @Option(
        name: .customLong("max-ids-per-request"), help: "Each request carries 1 to this many distinct ids (uniformly).")
    var maxIDsPerRequest = 40

    @Option(help: "The API token's request budget, for the simulator and the clients.")
    var rateLimit = "60/3s"

    @Option(help: "Simulated job duration: a base in milliseconds...")
    var jobBaseMs = 500

    @Option(help: "...plus this many milliseconds per upload...")
    var jobPerUploadMs = 5

    @Option(help: "...times 1 ± this jitter.")
    var jobJitter = 0.1

    @Option(help: "Fraction of uploads in use (their deletion fails).")
    var inUseFraction = 0.0

    @Option(help: "Requests the naive strategy works on at once.")
    var naiveConcurrency = 16

    @Option(parsing: .upToNextOption, help: "Strategies to run, in order.")
    var strategies: [BenchStrategy] = BenchStrategy.allCases

    @Option(help: "Give up on a strategy after this many seconds.")
    var timeoutS = 900

    @Option(help: "Write the results (with the per-second samples) as JSON here.")
    var json: String?

    @Option(help: "Write the throughput and 429 chart as SVG here.")
    var svg: String?

    func validate() throws {
        guard requests >= 1, maxIDsPerRequest >= 1, maxIDsPerRequest <= 1000 else {
            throw ValidationError("--requests must be at least 1 and --max-ids-per-request from 1 to 1000")
        }
        guard RateLimit(parsing: rateLimit) != nil else { throw ValidationError("--rate-limit must look like 60/3s") }
        guard !strategies.isEmpty else { throw ValidationError("--strategies needs at least one strategy") }
    }

    func run() async throws {
        LoggingSystem.bootstrap(format: .text, level: .error)
        let logger = Logger(label: "upload-purger.bench")
        let environment = BenchEnvironment(
            sizes: BenchWorkload.sizes(count: requests, maxIDsPerRequest: maxIDsPerRequest, seed: 2026),
            rateLimit: RateLimit(parsing: rateLimit)!, jobBase: .milliseconds(jobBaseMs),
            jobPerUpload: .milliseconds(jobPerUploadMs), jobJitter: jobJitter, inUseFraction: inUseFraction,
            naiveConcurrency: naiveConcurrency, timeout: .seconds(timeoutS))
        let uploads = environment.sizes.reduce(0, +)
        let caption =
            "\(requests) requests, \(uploads) uploads, rate limit \(rateLimit), jobs \(jobBaseMs) ms + \(jobPerUploadMs) ms/upload ± \(Int(jobJitter * 100)) %"
        print("bench: \(caption)")
        var results: [BenchResult] = []
        for strategy in strategies {
            print("bench: running \(strategy.title)…")
            let result = try await BenchRun(strategy: strategy, environment: environment, logger: logger).run()
            print(
                "bench:   \(result.complete ? "done" : "INCOMPLETE") in \(BenchReport.format(result.wallSeconds, 1)) s, "
                    + "\(result.deleted) deleted, \(result.apiRequests) API requests, \(result.rateLimited) 429s")
            results.append(result)
        }
        print("\n" + BenchReport.table(results) + "\n\nTargets (issue 6)\n" + BenchReport.targets(results))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: json))
        }
        if let svg {
            try Data(BenchReport.svg(results, strategies: strategies, caption: caption).utf8)
                .write(to: URL(fileURLWithPath: svg))
        }
        if results.contains(where: { !$0.complete || $0.doubleDeletions > 0 }) { throw ExitCode(1) }
    }
}
