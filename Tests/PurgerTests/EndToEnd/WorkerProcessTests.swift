import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

/// The `upload-purger` binary as operators run it, against the mock cluster and the simulator of this process.
@Suite("upload-purger run as a process", .serialized, .timeLimit(.minutes(5)))
struct WorkerProcessTests {
    @Test func missingOrInvalidSettingsStopStartUpWithExitCode2AndOneLine() async throws {
        let token = "process-secret-7d1e"
        let cases: [([String: String], [String], String)] = [
            ([:], [], "KAFKA_BOOTSTRAP_SERVERS"),
            (["KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"], [], "DATOCMS_API_TOKEN"),
            (
                ["KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATOCMS_API_TOKEN": token, "PURGER_BATCH_MAX_SIZE": "500"],
                [], "PURGER_BATCH_MAX_SIZE"
            ),
            (
                ["KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATOCMS_API_TOKEN": token],
                ["--batch-max-wait-ms", "soon"],
                "--batch-max-wait-ms"
            ),
            (
                ["KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATOCMS_API_TOKEN": token, "KAFKA_NO_SUCH_THING": "1"], [],
                "KAFKA_NO_SUCH_THING"
            ),
            (
                ["KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATOCMS_API_TOKEN": token, "DATOCMS_RATE_LIMIT": "fast"],
                [],
                "DATOCMS_RATE_LIMIT"
            ),
        ]
        for (environment, flags, setting) in cases {
            let result = try await WorkerProcess.run(["run"] + flags, environment: environment)
            #expect(result.status == 2, "\(setting)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "one line for \(setting): \(result.stderr)")
            #expect(lines.first?.contains(setting) == true, "\(result.stderr)")
            #expect(!result.stderr.contains(token) && !result.stdout.contains(token))
        }
    }

    @Test func usageErrorsOfEveryCommandExitWith2() async throws {
        for arguments in [
            ["demo", "--load-shedding", "2"], ["demo", "--no-such-flag"], ["simulator", "--port", "x"],
        ] {
            let result = try await WorkerProcess.run(arguments, environment: [:])
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
        }
    }

    @Test func runningWorkerServesMetricsHealthAndReadinessAndNeverShowsTheToken() async throws {
        let fixture = try await PipelineFixture()
        let primary = fixture.simulator.uploadIDs(environment: nil)
        let values = (0..<300).map { index in
            requestJSON(id: "proc-\(index)", uploads: [primary[index * 3], primary[index * 3 + 1]], environment: nil)
        }
        let producer = try fixture.producer()
        try await fixture.produce(values, with: producer)
        await producer.close()
        let port = Int.random(in: 20_000...40_000)
        let worker = try WorkerProcess(
            arguments: ["run"], environment: fixture.processEnvironment(group: "proc-\(UUID())", httpPort: port))

        // Alive, then ready once partitions are assigned and the API answered.
        let healthy = await eventually { await httpGet("http://127.0.0.1:\(port)/healthz")?.status == 200 }
        #expect(healthy)
        let ready = await eventually { await httpGet("http://127.0.0.1:\(port)/readyz")?.status == 200 }
        #expect(ready)

        let events = try await fixture.read(fixture.resultsTopic) { messages in
            Set(messages.flatMap { (try? ReadEvent($0))?.requests.map(\.request_id) ?? [] }).count >= 300
        }
        // At least once: a message fetched again after a rebalance counts again, so 300 is the least.
        let consumed = await eventually {
            let body = await httpGet("http://127.0.0.1:\(port)/metrics")?.body ?? ""
            return (metricValue("purger_requests_consumed_total", in: body) ?? 0) >= 300
        }
        #expect(consumed)
        // Lag comes from librdkafka's statistics, every 5 s.
        let lagged = await eventually(timeout: .seconds(120)) {
            await httpGet("http://127.0.0.1:\(port)/metrics")?.body.contains("purger_consumer_lag") == true
        }
        #expect(lagged)
        let metrics = await httpGet("http://127.0.0.1:\(port)/metrics")?.body ?? ""
        for name in [
            "purger_batches_submitted_total", "purger_batch_size", "purger_uploads_total",
            "purger_api_requests_total", "purger_polls_per_job", "purger_job_duration_seconds",
            "purger_in_flight_jobs", "purger_paused_partitions", "purger_consumer_lag",
            "purger_end_to_end_latency_seconds", "purger_job_results_total", "purger_push_connected",
            "purger_push_reconnects_total",
        ] {
            #expect(metrics.contains(name), "metric \(name)")
        }
        // `run --print-metrics` (what ops/check-deploy-files checks alerts and the dashboard against) lists every
        // name a working worker exports.
        let listed = try await WorkerProcess.run(["run", "--print-metrics"], environment: [:])
        #expect(listed.status == 0, "\(listed.stderr)")
        let exported = Set(
            metrics.split(separator: "\n").filter { $0.hasPrefix("# TYPE purger_") }.map {
                String($0.split(separator: " ")[2])
            })
        #expect(!exported.isEmpty)
        #expect(exported.subtracting(listed.stdout.split(separator: "\n").map(String.init)).isEmpty, "\(listed.stdout)")

        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(40))
        #expect(status == 0)
        let logs = worker.stderr
        #expect(logs.contains("Worker stopped"))
        for line in logs.split(separator: "\n") {
            #expect(
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "JSON log line: \(line.prefix(200))")
        }
        let token = PipelineFixture.token
        #expect(!logs.contains(token), "token in logs")
        #expect(!metrics.contains(token), "token in metrics")
        #expect(!events.contains { String(decoding: $0.value ?? [], as: UTF8.self).contains(token) }, "token in events")
        await fixture.simulator.shutdown()
    }

    @Test func printSettingsListsTheSettingsTableAndTheConsumerDefaultsAsJSONLines() async throws {
        let result = try await WorkerProcess.run(["run", "--print-settings"], environment: [:])
        #expect(result.status == 0, "\(result.stderr)")
        let objects = try result.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        let settings = objects.filter { $0["name"] != nil }
        #expect(settings.compactMap { $0["name"] as? String } == PurgerConfiguration.settings.map(\.environmentName))
        let batch = try #require(settings.first { $0["name"] as? String == "PURGER_BATCH_MAX_SIZE" })
        #expect(batch["flag"] as? String == "--batch-max-size" && batch["default"] as? String == "200")
        #expect(
            batch["meaning"] as? String
                == PurgerConfiguration.settings.first { $0.flagName == "batch-max-size" }?.meaning)
        #expect(settings.first { $0["name"] as? String == "KAFKA_<PROPERTY>" }?["flag"] is NSNull)
        var consumer: [String: String] = [:]
        for object in objects where object["client"] as? String == "consumer" {
            consumer[try #require(object["librdkafka"] as? String)] = object["value"] as? String
        }
        // What the README promises; librdkafka spells earliest "smallest".
        #expect(consumer["auto.offset.reset"] == "smallest", "\(consumer)")
        #expect(consumer["enable.auto.offset.store"] == "false")
        #expect(consumer["partition.assignment.strategy"] == "cooperative-sticky")
        #expect(!consumer.keys.contains("debug") && !consumer.values.contains { $0.hasPrefix("0x") })
    }

    @Test func printMetricsListsAtLeastTheContractMetrics() async throws {
        let result = try await WorkerProcess.run(["run", "--print-metrics"], environment: [:])
        #expect(result.status == 0, "\(result.stderr)")
        let names = Set(result.stdout.split(separator: "\n").map(String.init))
        // CONTRACT section 7, and the API client's instruments.
        let contract: Set = [
            "purger_requests_consumed_total", "purger_invalid_requests_total", "purger_dead_letters_total",
            "purger_batches_submitted_total", "purger_batches_completed_total", "purger_batch_size",
            "purger_uploads_total", "purger_api_requests_total", "purger_rate_limit_waits_total",
            "purger_rate_limit_wait_seconds", "purger_job_duration_seconds", "purger_polls_per_job",
            "purger_in_flight_jobs", "purger_paused_partitions", "purger_consumer_lag",
            "purger_end_to_end_latency_seconds", "purger_job_results_total", "purger_push_connected",
            "purger_push_reconnects_total",
        ]
        #expect(contract.isSubset(of: names), "missing: \(contract.subtracting(names).sorted())")
        #expect(names.allSatisfy { $0.hasPrefix("purger_") }, "\(result.stdout)")
    }

    @Test func simulatorWritesItsBannerAtOnceToAPipeAndExitsCleanlyOnSIGTERM() async throws {
        let simulator = try WorkerProcess(
            arguments: ["simulator", "--port", "0", "--token", "banner-token", "--uploads", "50", "--print-ids", "2"],
            environment: [:])
        // Standard output is a pipe: the banner must arrive while the simulator runs, not when it exits.
        let bannered = await eventually { simulator.stdout.contains("ids in staging: ") }
        #expect(bannered, "banner: \(simulator.stdout)")
        #expect(simulator.isRunning)
        let banner = simulator.stdout
        #expect(banner.contains("DATOCMS_API_TOKEN=banner-token"))
        let baseURL = banner.split(separator: "\n").first { $0.contains("DATOCMS_BASE_URL=") }
            .map { String($0.split(separator: "=", maxSplits: 1)[1]) }
        let stats = await httpGet("\(baseURL ?? "?")/_simulator/stats")
        #expect(stats?.status == 200, "the banner's base URL serves: \(banner)")
        #expect(banner.contains("DATOCMS_PUSH_URL=" + CMASimulator.pushURL(baseURL: baseURL ?? "?")), "\(banner)")

        simulator.signal(SIGTERM)
        let status = await simulator.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "\(simulator.stderr)")
        #expect(!simulator.stderr.lowercased().contains("error"), "\(simulator.stderr)")
    }

    @Test func killedWorkersLoseNothing() async throws {
        let fixture = try await PipelineFixture()
        let (values, _, requests) = PipelineEndToEndTests.generateRequests(count: 4_000, fixture: fixture)
        let producer = try fixture.producer()
        try await fixture.produce(values, with: producer)
        await producer.close()
        let group = "killed-\(UUID())"
        var kills = 0
        // Kill -9 a worker three times as soon as it has published something, then let a last one finish.
        for _ in 0..<3 {
            let before = try await fixture.read(fixture.resultsTopic, timeout: .seconds(2)) { _ in false }.count
            let worker = try WorkerProcess(
                arguments: ["run"], environment: fixture.processEnvironment(group: group, httpPort: 0))
            _ = try await fixture.read(fixture.resultsTopic, timeout: .seconds(60)) { $0.count > before + 3 }
            worker.signal(SIGKILL)
            _ = await worker.waitForExit(timeout: .seconds(10))
            kills += 1
        }
        let last = try WorkerProcess(
            arguments: ["run"], environment: fixture.processEnvironment(group: group, httpPort: 0))
        let messages = try await fixture.read(fixture.resultsTopic, timeout: .seconds(180)) { messages in
            Set(messages.flatMap { (try? ReadEvent($0))?.requests.map(\.request_id) ?? [] }).count >= requests.count
        }
        last.signal(SIGTERM)
        #expect(await last.waitForExit(timeout: .seconds(40)) == 0)
        let events = try messages.map(ReadEvent.init)
        let reported = Set(events.flatMap { $0.requests.map(\.request_id) })
        #expect(kills == 3)
        #expect(reported.count == requests.count, "lost: \(requests.count - reported.count)")
        #expect(events.allSatisfy { $0.successful + $0.not_found + $0.failed == $0.requested })
        #expect(fixture.simulator.stats().doubleDeletions == 0)
        await fixture.simulator.shutdown()
    }
}

/// Polls `condition` every 100 ms for up to `timeout`.
/// The value of an unlabelled sample `name` in a Prometheus text exposition.
func metricValue(_ name: String, in exposition: String) -> Double? {
    for line in exposition.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if fields.count == 2, fields[0] == name { return Double(fields[1]) }
    }
    return nil
}

func eventually(timeout: Duration = .seconds(60), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return false
}

extension PipelineFixture {
    /// The environment of a worker process against this fixture's cluster and simulator.
    func processEnvironment(group: String, httpPort: Int) -> [String: String] {
        [
            "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrapServers, "KAFKA_GROUP_ID": group,
            "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "PURGER_REQUESTS_TOPIC": requestsTopic, "PURGER_RESULTS_TOPIC": resultsTopic,
            "PURGER_DLQ_TOPIC": dlqTopic, "DATOCMS_API_TOKEN": Self.token, "DATOCMS_BASE_URL": baseURL,
            "DATOCMS_RATE_LIMIT": "2000/1s", "PURGER_BATCH_MAX_WAIT_MS": "100", "PURGER_HTTP_PORT": "\(httpPort)",
            "PURGER_LOG_LEVEL": "trace", "PURGER_SHUTDOWN_TIMEOUT_S": "20",
            // Job results pushed (the default) by the simulator's own websocket.
            "DATOCMS_PUSH_URL": CMASimulator.pushURL(baseURL: baseURL),
        ]
    }
}
