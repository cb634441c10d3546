import ArgumentParser
import DatoCMS
import Foundation
import Logging
import PurgerCommandLine

/// `upload-purger-bench`: the same requests through several strategies, each on a fresh mock cluster and simulator,
/// measured side by side in one process; or one of the other scenarios.
///
/// A binary of its own, so that no benchmark code ships in `upload-purger`; the scenarios that need worker processes
/// start the `upload-purger` binary next to this one.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload-purger-bench",
        abstract:
            "Measure the worker: request strategies, consume path, memory under a backlog, replicas on one token.",
        discussion: """
            --scenario strategies (the default): each strategy gets a fresh librdkafka mock cluster and CMA \
            simulator with the same settings, the same requests (every id distinct and deletable unless \
            --in-use-fraction or --recurrence say otherwise, all produced before the strategy starts: a backlog), \
            and runs until every request has a completion event. The simulator's own counters give requests, 429s, \
            polls and job timings; the results topic gives end-to-end latency; getrusage and /proc/self/status give \
            CPU and peak memory of the whole process (simulator and \
            mock broker included).

            --scenario consume: reads the same topic with a plain consumer and with the real worker (PurgeWorker in \
            this process, defaults but a 100 ms batch wait) against a simulator with no effective rate limit and \
            instant jobs, --runs times each, alternating; reports messages/s and their ratio (medians).

            --scenario backlog: produces --requests requests (one upload id each) to the mock cluster, starts one \
            `upload-purger run` child process (the binary next to this one) on it and the simulator, and reads the child's VmRSS/VmHWM from \
            /proc/<pid>/status for --duration-s seconds or until the backlog is drained.

            --scenario replicas: --replicas `upload-purger run` child processes in one group share one token on \
            one simulator, working through a backlog until every request has a completion event; reports \
            aggregate deletions/s against the ceiling, polls per job and 429s.
            """
    )

    @Option(help: "What to measure.")
    var scenario: BenchScenario = .strategies

    @Option(
        help: """
            Deletion requests (per strategy). Default: 2000 for strategies, 20000 for consume, 1000000 for backlog, \
            3000 for replicas.
            """)
    var requests: Int?

    @Option(
        name: .customLong("max-ids-per-request"),
        help: "Each request carries 1 to this many distinct ids (uniformly); backlog requests carry 1.")
    var maxIDsPerRequest = 40

    @Option(
        help:
            "The API token's request budget, for the simulator and the clients. Default: 1000/1s for backlog, else 60/3s."
    )
    var rateLimit: String?

    @Option(help: "Simulated job duration: a base in milliseconds...")
    var jobBaseMs = 500

    @Option(help: "...plus this many milliseconds per upload...")
    var jobPerUploadMs = 5

    @Option(help: "...times 1 ± this jitter.")
    var jobJitter = 0.1

    @Option(help: "(strategies, replicas) Fraction of uploads in use (their deletion fails).")
    var inUseFraction = 0.0

    @Option(
        help: "(strategies) Probability that an id of a request repeats one an earlier request named (0 to 1).")
    var recurrence = 0.0

    @Option(
        help: "(strategies) Jobs the simulated site runs at once; later ones queue. Default: all at once.")
    var maxConcurrentJobs: Int?

    @Option(help: "(strategies) Jobs started this many seconds into a strategy's run take twice as long.")
    var slowDownAfterS: Int?

    @Option(help: "(strategies) Requests the naive strategy works on at once.")
    var naiveConcurrency = 16

    @Option(parsing: .upToNextOption, help: "(strategies) Strategies to run, in order.")
    var strategies: [BenchStrategy] = BenchStrategy.allCases

    @Option(help: "(strategies, replicas) Give up on a strategy or on the replicas after this many seconds.")
    var timeoutS = 900

    @Option(
        help: """
            Partitions of the requests topic (consume, backlog, replicas). Default: 32 for consume, 64 for backlog, \
            8 for replicas: the mock cluster keeps at most 5 MB per partition. Strategies use 3.
            """)
    var partitions: Int32?

    @Option(help: "(consume) Readings of each kind, alternating which goes first; medians are reported.")
    var runs = 5

    @Option(help: "(backlog) Sample the worker this many seconds, unless the backlog drains first.")
    var durationS = 120

    @Option(help: "(replicas) Worker processes.")
    var replicas = 4

    @Option(
        help: ArgumentHelp(
            "(replicas) Stop every worker at once when this many requests are reported, mid-run, instead of at the "
                + "end (the committed offsets are compared with what was reported either way).",
            valueName: "N"))
    var stopAfterRequests: Int?

    @Option(
        name: .customLong("worker-env"),
        help: ArgumentHelp(
            "(consume, backlog, replicas) NAME=VALUE added to the workers' settings (repeatable).",
            valueName: "NAME=VALUE"))
    var workerEnvironment: [String] = []

    @Option(help: "Write the results (with the per-second samples) as JSON here.")
    var json: String?

    @Option(help: "(strategies) Write the throughput and 429 chart as SVG here.")
    var svg: String?

    /// Runs the command; usage errors exit with 2, like `upload-purger`'s.
    static func main() async { await CommandLineMain.run(Self.self) }

    func validate() throws {
        guard (0...1).contains(recurrence), (0...1).contains(inUseFraction) else {
            throw ValidationError("--recurrence and --in-use-fraction must be from 0 to 1")
        }
        guard requests ?? 1 >= 1, maxIDsPerRequest >= 1, maxIDsPerRequest <= 1000 else {
            throw ValidationError("--requests must be at least 1 and --max-ids-per-request from 1 to 1000")
        }
        guard RateLimit(parsing: rateLimit ?? "60/3s") != nil else {
            throw ValidationError("--rate-limit must look like 60/3s")
        }
        guard maxConcurrentJobs ?? 1 >= 1, slowDownAfterS ?? 0 >= 0 else {
            throw ValidationError("--max-concurrent-jobs must be at least 1 and --slow-down-after-s at least 0")
        }
        guard partitions ?? 1 >= 1, runs >= 1, durationS >= 1, replicas >= 1 else {
            throw ValidationError("--partitions, --runs, --duration-s and --replicas must be at least 1")
        }
        guard workerEnvironment.allSatisfy({ $0.contains("=") }) else {
            throw ValidationError("--worker-env takes NAME=VALUE")
        }
        guard !strategies.isEmpty else { throw ValidationError("--strategies needs at least one strategy") }
    }

    func run() async throws {
        LoggingSystem.bootstrap(format: .text, level: .error)
        let logger = Logger(label: "upload-purger-bench")
        guard scenario == .strategies else { return try await runScenario(logger: logger) }
        let requests = self.requests ?? scenario.defaultRequests
        let rateLimit = self.rateLimit ?? scenario.defaultRateLimit
        let environment = BenchEnvironment(
            sizes: BenchWorkload.sizes(count: requests, maxIDsPerRequest: maxIDsPerRequest, seed: 2026),
            rateLimit: RateLimit(parsing: rateLimit)!, jobBase: .milliseconds(jobBaseMs),
            jobPerUpload: .milliseconds(jobPerUploadMs), jobJitter: jobJitter, inUseFraction: inUseFraction,
            recurrence: recurrence, naiveConcurrency: naiveConcurrency, timeout: .seconds(timeoutS),
            maxConcurrentJobs: maxConcurrentJobs, slowDownAfter: slowDownAfterS.map { .seconds($0) })
        let uploads = environment.sizes.reduce(0, +)
        var caption =
            "\(requests) requests, \(uploads) upload ids (in use \(Int(inUseFraction * 100)) %, recurring \(Int(recurrence * 100)) %), rate limit \(rateLimit), jobs \(jobBaseMs) ms + \(jobPerUploadMs) ms/upload ± \(Int(jobJitter * 100)) %"
        if let maxConcurrentJobs { caption += ", at most \(maxConcurrentJobs) at once (the rest queue)" }
        if let slowDownAfterS { caption += ", twice as long from \(slowDownAfterS) s on" }
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
        print(
            "\n" + BenchReport.table(results) + "\n\nOutcomes\n" + BenchReport.outcomesTable(results)
                + "\n\nTargets (issue 6)\n" + BenchReport.targets(results))
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
