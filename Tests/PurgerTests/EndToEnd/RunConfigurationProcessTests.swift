import Foundation
import Testing

/// `upload-purger run` as a pod starts it: what it makes of the environment, before and right after start-up.
@Suite("run configuration", .serialized, .timeLimit(.minutes(2)))
struct RunConfigurationProcessTests {
    private static let secret = "process-test-token-value"

    /// What a pod next to a Service `kafka` gets besides its own settings.
    private static let environment = [
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "DATOCMS_API_TOKEN": secret,
        "DATOCMS_BASE_URL": "http://127.0.0.1:9",
        "PURGER_HTTP_PORT": "0",
        "PURGER_SHUTDOWN_TIMEOUT_S": "1",
        "KAFKA_PORT": "tcp://10.96.4.7:9092",
        "KAFKA_PORT_9092_TCP": "tcp://10.96.4.7:9092",
        "KAFKA_PORT_9092_TCP_ADDR": "10.96.4.7",
        "KAFKA_PORT_9092_TCP_PORT": "9092",
        "KAFKA_PORT_9092_TCP_PROTO": "tcp",
        "KAFKA_SERVICE_HOST": "10.96.4.7",
        "KAFKA_SERVICE_PORT": "9092",
    ]

    @Test func exitsWithCode2OnAnUnknownLibrdkafkaPropertyNamingOnlyIt() async throws {
        var environment = Self.environment
        environment["KAFKA_NOT_A_PROPERTY"] = "x"
        let result = try await WorkerProcess.run(["run"], environment: environment)
        #expect(result.status == 2)
        #expect(result.stderr == "upload-purger: KAFKA_NOT_A_PROPERTY: librdkafka has no property not.a.property\n")
        #expect(!(result.stdout + result.stderr).contains(Self.secret))
    }

    @Test func startsNextToServiceLinksAndLogsWhatItIgnored() async throws {
        var environment = Self.environment
        environment["PURGER_BATCH_MAX_SIZ"] = "50"
        let process = try WorkerProcess(arguments: ["run"], environment: environment)
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while process.isRunning, !process.stderr.contains("did you mean"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        // Only start-up is under test; with no broker to leave, a graceful stop has nothing to show.
        process.signal(SIGKILL)
        _ = await process.waitForExit(timeout: .seconds(10))
        let lines = process.stderr.split(separator: "\n")
        let serviceLinks = lines.filter { $0.contains("Kubernetes service-link variables") }
        #expect(serviceLinks.count == 1, "\(process.stderr.suffix(2_000))")
        #expect(serviceLinks.first?.contains(#""level":"info""#) == true)
        #expect(
            serviceLinks.first?.contains(
                "KAFKA_PORT, KAFKA_PORT_9092_TCP, KAFKA_PORT_9092_TCP_ADDR, KAFKA_PORT_9092_TCP_PORT, "
                    + "KAFKA_PORT_9092_TCP_PROTO, KAFKA_SERVICE_HOST, KAFKA_SERVICE_PORT") == true)
        let typo = lines.filter {
            $0.contains("PURGER_BATCH_MAX_SIZ is not a setting; did you mean PURGER_BATCH_MAX_SIZE?")
        }
        #expect(typo.count == 1)
        #expect(typo.first?.contains(#""level":"warning""#) == true)
        #expect(!process.stderr.contains("librdkafka has no property"))
        #expect(!(process.stdout + process.stderr).contains(Self.secret))
    }
}
