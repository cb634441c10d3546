import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Metrics
import Prometheus
import Purger
import Synchronization

/// What `run --print-settings` and `run --print-metrics` print: facts about the worker that tools compare the
/// deployment files with (`ops/check-deploy-files`), read from the code the worker runs rather than restated.
enum WorkerFacts {
    /// One JSON object per line: every row of ``PurgerConfiguration/settings``, then every librdkafka property
    /// the worker's consumer sets when no `KAFKA_*` variable overrides it, as librdkafka reports it.
    static func printSettings() async throws {
        var lines = PurgerConfiguration.settings.map { row in
            jsonObject([
                ("name", row.environmentName), ("flag", row.flagName.map { "--\($0)" }),
                ("default", row.defaultText), ("meaning", row.meaning),
            ])
        }
        for (property, value) in try await consumerProperties() {
            lines.append(jsonObject([("librdkafka", property), ("client", "consumer"), ("value", value)]))
        }
        FileHandle.standardOutput.write(Data(lines.map { $0 + "\n" }.joined().utf8))
    }

    /// The metric names the worker exports, one per line, sorted: its own instruments and the API client's, as
    /// the Prometheus registry of `run` names them after each has been used once.
    static func printMetrics() async throws {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(RunCommand.metricsFactory(registry: registry))
        PurgerMetrics.registerEveryInstrument()
        CMAClient.registerPushInstruments()
        try await exerciseAPIClient()
        let names = Set(
            registry.emitToString().split(separator: "\n").compactMap { line -> String? in
                let words = line.split(separator: " ")
                return words.count >= 3 && words[0] == "#" && words[1] == "TYPE" ? String(words[2]) : nil
            })
        FileHandle.standardOutput.write(Data(names.sorted().map { $0 + "\n" }.joined().utf8))
    }

    /// The consumer's librdkafka configuration as librdkafka dumps it (`debug=conf`) when the worker's Kafka
    /// layer creates a consumer without operator properties. Callbacks, pointers, placeholders and `debug`
    /// itself are left out.
    static func consumerProperties() async throws -> [(String, String)] {
        let recorder = LogRecorder()
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: "127.0.0.1:9", groupID: "upload-purger", properties: ["debug": "conf"]),
            logger: Logger(label: "upload-purger.print-settings") { _ in recorder })
        // librdkafka dumps the configuration while the client is created, on the creating thread.
        let dumped = recorder.lines
        await consumer.close(timeout: .seconds(1))
        // The broker list and the group are placeholders here (the settings table has the group's default);
        // client.software.version is librdkafka's own.
        let skipped: Set<String> = [
            "debug", "metadata.broker.list", "bootstrap.servers", "group.id", "client.software.version",
            "default_topic_conf",
        ]
        return dumped.compactMap { record in
            // "[thrd:app]:   auto.offset.reset = smallest", under "Client configuration:" or "Default topic
            // configuration:".
            let line = record.range(of: "]: ").map { record[$0.upperBound...] } ?? record[...]
            guard line.hasPrefix("  "), let equals = line.range(of: " = ") else { return nil }
            let name = line[..<equals.lowerBound].trimmingCharacters(in: .whitespaces)
            let value = String(line[equals.upperBound...])
            guard !skipped.contains(name), !name.hasSuffix("_cb"), name != "opaque", !value.hasPrefix("0x") else {
                return nil
            }
            return (name, value)
        }.sorted { $0.0 < $1.0 }
    }

    /// One bulk deletion through the real API client against an in-process simulator, with a budget of one
    /// request per 300 ms so that the poll after the submission waits for the rate limiter: every instrument
    /// of the client (responses, rate-limit waits, job duration, polls per job) is used.
    static func exerciseAPIClient() async throws {
        let token = "print-metrics-\(UUID().uuidString)"
        let silent = Logger(label: "upload-purger.print-metrics") { _ in SwiftLogNoOpLogHandler() }
        let simulator = CMASimulator(
            configuration: SimulatorConfiguration(
                apiToken: token, environments: [nil], uploadsPerEnvironment: 20, inUseFraction: 0,
                jobBaseDuration: .zero, jobPerUploadDuration: .zero, jobJitter: 0),
            logger: silent)
        let baseURL = try await simulator.start()
        let client = CMAClient(
            configuration: CMAClientConfiguration(
                apiToken: APIToken(token), baseURL: baseURL,
                rateLimit: RateLimit(requests: 1, window: .milliseconds(300)), jobTimeout: .seconds(30),
                pollSchedule: .init(priorBase: .milliseconds(10), priorPerUpload: .zero)),
            logger: silent)
        // Each attempt waits at least once unless the process stalls for the whole window between two requests.
        for id in simulator.uploadIDs(environment: nil) where client.statistics.rateLimitWaits == 0 {
            _ = try? await client.destroyUploads([id], environment: nil)
        }
        await simulator.shutdown()
    }

    /// `{"key": value, ...}` with the members in the given order; `nil` is `null`.
    static func jsonObject(_ members: [(String, String?)]) -> String {
        "{" + members.map { "\(jsonString($0.0)): \($0.1.map(jsonString) ?? "null")" }.joined(separator: ", ") + "}"
    }

    static func jsonString(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }
}

/// Keeps the `detail` of every log record (librdkafka's message), at every level.
private struct LogRecorder: LogHandler {
    private let storage = Storage()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var lines: [String] { storage.lines.withLock { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if let detail = event.metadata?["detail"] {
            storage.lines.withLock { $0.append("\(detail)") }
        }
    }

    private final class Storage: Sendable {
        let lines = Mutex<[String]>([])
    }
}
