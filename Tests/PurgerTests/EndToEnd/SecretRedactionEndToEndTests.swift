import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Purger
import Testing

extension PipelineEndToEndTests {
    @Suite("Secret redaction end to end")
    struct SecretRedactionEndToEndTests {
        static let wrongToken = "e2e-wrong-token-0d3b71"

        /// Whether `secret` occurs in `bytes`.
        static func leaks(_ secret: String, in bytes: [UInt8]?) -> Bool {
            guard let bytes else { return false }
            return Data(bytes).range(of: Data(secret.utf8)) != nil
        }

        /// Whether `secret` occurs anywhere in `message`: key, value, header names and values.
        static func leaks(_ secret: String, in message: KafkaMessage) -> Bool {
            leaks(secret, in: message.key) || leaks(secret, in: message.value)
                || message.headers.contains { leaks(secret, in: Array($0.name.utf8)) || leaks(secret, in: $0.value) }
        }

        @Test func theRecorderSeesASecretThatIsLogged() {
            let recorder = LogRecorder()
            recorder.logger().trace("Request sent", metadata: ["authorization": "Bearer \(PipelineFixture.token)"])
            #expect(recorder.recorded.contains { $0.contains(PipelineFixture.token) })
        }

        @Test func theTokenAppearsInNoLogLineEventOrDeadLetter() async throws {
            // Faults make the client retry and log its warnings; in-use ids make jobs report failures.
            let faults = SimulatorFaults(
                unavailable503Transient: 0.05, loadShedding429: 0.05, loadSheddingResetSeconds: 1)
            let fixture = try await PipelineFixture(
                simulator: PipelineFixture.fastSimulator(inUse: 0.2, faults: faults))
            let uploads = distinctUploads(fixture, count: 300)
            var records: [(key: [UInt8]?, value: [UInt8]?)] = (0..<300).map {
                (Array("k-\($0)".utf8), requestJSON(id: "req-\($0)", uploads: [uploads[$0]], environment: nil))
            }
            records += [
                (Array("bad-0".utf8), Array("{".utf8)),
                (Array("bad-1".utf8), Array(#"{"upload_id": "x"}"#.utf8)),
            ]
            let producer = try fixture.producer()
            _ = try await fixture.produce(records: records, with: producer)
            await producer.close()

            let recorder = LogRecorder()
            let group = "purger-\(UUID())"
            let worker = fixture.worker(
                try fixture.settings(group: group),
                client: fixture.client(logger: recorder.logger(label: "client")),
                logger: recorder.logger(label: "worker"))
            let (results, failure) = try await withRunningWorker(worker) {
                try await fixture.read(fixture.resultsTopic, timeout: .seconds(60)) {
                    reportedRequestIDs($0).count >= 300
                }
            }
            #expect(failure == nil)
            #expect(reportedRequestIDs(results).count == 300)

            // A worker whose token is refused logs the refusal; the wrong token is a secret too.
            let refused = RunningWorker(
                fixture.worker(
                    try fixture.settings(group: "purger-\(UUID())"),
                    client: fixture.client(token: Self.wrongToken, logger: recorder.logger(label: "client")),
                    logger: recorder.logger(label: "worker")))
            let ended = await refused.ended(within: .seconds(60))
            #expect(ended?.succeeded == false, "the worker with the wrong token fails")

            let lines = recorder.recorded
            #expect(lines.contains { $0.contains("Bulk operation reported") }, "trace and debug lines were recorded")
            #expect(lines.contains { $0.hasPrefix("error") }, "the refusal was logged")
            for secret in [PipelineFixture.token, Self.wrongToken] {
                let leaking = lines.filter { $0.contains(secret) }
                #expect(leaking.isEmpty, "log lines with a token: \(leaking.prefix(3))")
                #expect(!results.contains { Self.leaks(secret, in: $0) }, "a completion event holds a token")
            }
            let deadLetters = try await fixture.read(fixture.dlqTopic, timeout: .seconds(30)) { $0.count >= 2 }
            #expect(deadLetters.count == 2)
            for secret in [PipelineFixture.token, Self.wrongToken] {
                #expect(!deadLetters.contains { Self.leaks(secret, in: $0) }, "a dead letter holds a token")
            }
            print("secret redaction: \(lines.count) log lines scanned")
            await fixture.simulator.shutdown()
        }
    }
}
