import ArgumentParser
import DatoCMS
import Foundation
import Kafka
import Logging
import Metrics
import Prometheus
import Purger
import PurgerCommandLine
import ServiceLifecycle
import UnixSignals

/// `upload-purger run`: the worker, configured by environment variables and same-named flags.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the worker: consume deletion requests, delete in bulk, publish completion events.",
        discussion: """
            Every setting is an environment variable and a flag of the same name in kebab case \
            (PURGER_BATCH_MAX_SIZE is --batch-max-size); flags win. A missing or invalid setting stops \
            start-up with exit code 2 and one line naming it.

            \(SettingsTable.render())

            --print-settings and --print-metrics print the settings (and the librdkafka properties the worker sets) \
            as JSON lines and the exported metric names, for tools, and exit.
            """
    )

    @Argument(
        parsing: .captureForPassthrough,
        help: ArgumentHelp("Settings as --name value or --name=value.", valueName: "settings"))
    var settings: [String] = []

    func run() async throws {
        // Settings are passed through unparsed, so help is recognised here.
        if settings.contains("--help") || settings.contains("-h") {
            print(Self.helpMessage())
            return
        }
        if settings == ["--print-settings"] { return try await WorkerFacts.printSettings() }
        if settings == ["--print-metrics"] { return try await WorkerFacts.printMetrics() }
        let configuration: PurgerConfiguration
        let notices: [ConfigurationNotice]
        let required: (kafkaBootstrapServers: String, apiToken: APIToken)
        do {
            let loaded = try PurgerConfiguration.loadWithNotices(
                environment: ProcessInfo.processInfo.environment, flags: try FlagParser.parse(settings),
                readFile: { path in try String(contentsOfFile: path, encoding: .utf8) })
            configuration = loaded.configuration
            notices = loaded.notices
            required = try configuration.requireForRun()
            try configuration.checkKafkaProperties()
        } catch {
            FileHandle.standardError.write(Data("upload-purger: \(error)\n".utf8))
            throw ExitCode(2)
        }

        // Before any connection is set up on an event-loop thread (see NIOTypeMetadata for the runtime crash).
        NIOTypeMetadata.instantiate()
        LoggingSystem.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "upload-purger")
        for notice in notices { logger.log(level: notice.level, "\(notice)") }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(Self.metricsFactory(registry: registry))
        CMAClient.registerPushInstruments()
        let client = CMAClient(
            configuration: CMAClientConfiguration(
                apiToken: required.apiToken, baseURL: configuration.datocmsBaseURL.absoluteString,
                defaultEnvironment: configuration.datocmsEnvironment, rateLimit: configuration.rateLimit,
                jobTimeout: configuration.jobTimeout, jobResults: configuration.jobResults,
                pushURL: configuration.pushURL.absoluteString, pushKey: configuration.pushKey),
            logger: logger)
        let worker = PurgeWorker(
            settings: PurgeWorker.Settings(
                configuration: configuration, bootstrapServers: required.kafkaBootstrapServers),
            client: client, logger: logger)
        // Services shut down in reverse order: the worker drains first while the probes keep answering.
        var services: [any Service] = []
        if configuration.httpPort != 0 {
            services.append(
                OperationsServer.make(port: configuration.httpPort, registry: registry, worker: worker, logger: logger))
        }
        services.append(worker)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        do {
            try await Self.run(group, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("upload-purger: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Why `run` ended before its drain.
struct StoppedAtOnce: Error, CustomStringConvertible {
    var description: String {
        "stopped at once on a second signal; requests not yet finished stay uncommitted and are redone on the next start"
    }
}

extension RunCommand {
    /// Runs `group` until it ends. The first SIGTERM or SIGINT starts the graceful shutdown (the worker drains
    /// within its budget); a second one during the drain cancels the group, which stops at once, storing nothing
    /// unfinished, and `run` exits 1.
    static func run(_ group: ServiceGroup, logger: Logger) async throws {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                var signals = 0
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    signals += 1
                    if signals == 1 {
                        logger.info("Signal received; draining", metadata: ["signal": "\(signal)"])
                        await group.triggerGracefulShutdown()
                    } else {
                        logger.warning("Second signal received; stopping at once", metadata: ["signal": "\(signal)"])
                        throw StoppedAtOnce()
                    }
                }
            }
            // The group ending (or the second signal) ends the run; the other task is cancelled.
            try await tasks.next()
            tasks.cancelAll()
        }
    }

    /// Prometheus with buckets that fit what is measured: batches hold up to 200 ids, jobs take seconds to
    /// minutes, and a request may wait minutes behind a backlog.
    static func metricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["purger_batch_size"] = [1, 10, 25, 50, 100, 150, 199, 200]
        factory.valueHistogramBuckets["purger_polls_per_job"] = [1, 2, 3, 5, 8, 13, 21, 34, 55]
        let seconds: [Duration] = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800].map { .milliseconds(Int($0 * 1000)) }
        factory.durationHistogramBuckets["purger_job_duration_seconds"] = seconds
        factory.durationHistogramBuckets["purger_end_to_end_latency_seconds"] = seconds
        factory.durationHistogramBuckets["purger_rate_limit_wait_seconds"] = seconds
        return factory
    }
}

/// Reads `--name value` and `--name=value` pairs into a dictionary keyed by name.
enum FlagParser {
    static func parse(_ arguments: [String]) throws(ConfigurationError) -> [String: String] {
        var flags: [String: String] = [:]
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ConfigurationError(setting: argument, message: "is not a --flag; settings are --name value")
            }
            let body = argument.dropFirst(2)
            if let equals = body.firstIndex(of: "=") {
                flags[String(body[..<equals])] = String(body[body.index(after: equals)...])
            } else {
                index += 1
                guard index < arguments.endIndex else {
                    throw ConfigurationError(setting: argument, message: "needs a value")
                }
                flags[String(body)] = arguments[index]
            }
            index += 1
        }
        return flags
    }
}
