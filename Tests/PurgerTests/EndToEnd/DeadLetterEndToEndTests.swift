import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

extension PipelineEndToEndTests {
    @Suite("Dead letters end to end")
    struct DeadLetterEndToEndTests {
        /// One invalid request as produced, and the dead-letter code the contract gives it.
        struct InvalidCase {
            var name: String
            var key: [UInt8]?
            var value: [UInt8]?
            var code: String
        }

        static func invalidCases(spared: UploadID, valid: UploadID) -> [InvalidCase] {
            let tooMany = (0..<1001).map { "\"\(100_000 + $0)\"" }.joined(separator: ",")
            // Over 1 MiB, otherwise a well-formed request: only its size makes it invalid.
            let padding = String(repeating: "x", count: DeletionRequest.maxPayloadBytes)
            let oversized = #"{"upload_id":"\#(spared.rawValue)","padding":"\#(padding)"}"#
            var invalidUTF8 = Array(#"{"upload_id":""#.utf8)
            invalidUTF8 += [0xFF, 0xFE, 0xC3]
            invalidUTF8 += Array(#""}"#.utf8)
            func text(_ name: String, _ json: String, _ code: String) -> InvalidCase {
                InvalidCase(name: name, key: Array("bad-\(name)".utf8), value: Array(json.utf8), code: code)
            }
            return [
                text("truncated-json", #"{"upload_ids": ["#, "invalid_json"),
                text("not-an-object", "[1, 2, 3]", "invalid_json"),
                InvalidCase(name: "no-key", key: nil, value: Array("not json at all".utf8), code: "invalid_json"),
                InvalidCase(
                    name: "invalid-utf8", key: Array("bad-utf8".utf8), value: invalidUTF8, code: "invalid_json"),
                text("ids-not-array", #"{"upload_ids": "\#(valid.rawValue)"}"#, "invalid_request"),
                text("id-not-string", #"{"upload_id": 20042921}"#, "invalid_request"),
                text(
                    "request-id-number", #"{"upload_id": "\#(spared.rawValue)", "request_id": 42}"#, "invalid_request"),
                text(
                    "bad-environment", #"{"upload_id": "\#(spared.rawValue)", "environment": "no spaces"}"#,
                    "invalid_request"),
                text("empty-ids", #"{"upload_ids": []}"#, "invalid_request"),
                InvalidCase(name: "tombstone", key: Array("bad-tombstone".utf8), value: nil, code: "invalid_request"),
                text("malformed-id", #"{"upload_ids": ["\#(spared.rawValue)", "not an id!"]}"#, "invalid_upload_id"),
                text("sixteen-digits", #"{"upload_id": "1234567890123456"}"#, "invalid_upload_id"),
                text("too-many-ids", #"{"upload_ids": [\#(tooMany)]}"#, "too_many_upload_ids"),
                InvalidCase(
                    name: "oversized", key: Array("bad-oversized".utf8), value: Array(oversized.utf8),
                    code: "payload_too_large"),
            ]
        }

        @Test func exactlyTheInvalidRequestsReachTheDeadLetterTopicUnchangedWithTheirReason() async throws {
            let fixture = try await PipelineFixture()
            let uploads = distinctUploads(fixture, count: 302)
            let spared = uploads[300]
            let invalid = Self.invalidCases(spared: spared, valid: uploads[301])
            #expect(invalid.first { $0.name == "oversized" }!.value!.count > DeletionRequest.maxPayloadBytes)

            // Valid requests with one invalid one after every 20th.
            var records: [(key: [UInt8]?, value: [UInt8]?)] = []
            var invalidAt: [Int: InvalidCase] = [:]
            for index in 0..<300 {
                records.append(
                    (
                        Array("k-\(index)".utf8),
                        requestJSON(id: "valid-\(index)", uploads: [uploads[index]], environment: nil)
                    ))
                if index % 20 == 10, invalidAt.count < invalid.count {
                    let invalidCase = invalid[invalidAt.count]
                    invalidAt[records.count] = invalidCase
                    records.append((invalidCase.key, invalidCase.value))
                }
            }
            #expect(invalidAt.count == invalid.count)
            // librdkafka refuses messages over message.max.bytes (1,000,000 by default) before sending them.
            let large = ["message.max.bytes": "4000000"]
            let producer = try fixture.producer(properties: large)
            let reports = try await fixture.produce(records: records, with: producer)

            let group = "purger-\(UUID())"
            let worker = fixture.worker(try fixture.settings(group: group, kafkaProperties: large))
            let (results, failure) = try await withRunningWorker(worker) {
                try await fixture.read(fixture.resultsTopic, timeout: .seconds(60)) { messages in
                    reportedRequestIDs(messages).keys.filter { $0.hasPrefix("valid-") }.count >= 300
                }
            }
            #expect(failure == nil)

            // All valid requests completed; nothing of an invalid request was deleted.
            let events = try results.map(ReadEvent.init)
            #expect(events.allSatisfy { $0.status == "completed" })
            #expect(Set(reportedRequestIDs(results).keys) == Set((0..<300).map { "valid-\($0)" }))
            #expect(!events.flatMap(\.upload_ids).contains(spared.rawValue))
            #expect(!fixture.simulator.deletedUploadIDs(environment: nil).contains(spared))
            #expect(!fixture.simulator.deletedUploadIDs(environment: nil).contains(uploads[301]))

            // Offsets committed to the end of every partition.
            var ends: [TopicPartition: Int64] = [:]
            for report in reports {
                ends[report.topicPartition] = max(ends[report.topicPartition] ?? 0, report.offset + 1)
            }
            let committed = try await fixture.committedOffsets(group: group)
            for (partition, end) in ends {
                #expect(committed[partition] == .some(end), "partition \(partition) committed to its end")
            }

            // Exactly the invalid requests are dead letters, byte for byte, with their reason and source.
            let deadLetters = try await fixture.read(fixture.dlqTopic, timeout: .seconds(30)) {
                $0.count >= invalid.count
            }
            #expect(deadLetters.count == invalid.count)
            let headerObjects = try deadLetters.map { message in
                let object = Dictionary(
                    message.headers.map { ($0.name, String(decoding: $0.value ?? [], as: UTF8.self)) }
                ) { first, _ in first }
                return Array(try JSONSerialization.data(withJSONObject: object))
            }
            let schemaCheck = try RealOutputTests.checkSchema("dead-letter-headers", headerObjects)
            #expect(schemaCheck.status == 0, "\(schemaCheck.output.suffix(2_000))")
            func header(_ message: KafkaMessage, _ name: String) -> String? {
                message.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
            }
            var bySource: [String: KafkaMessage] = [:]
            for message in deadLetters {
                let source =
                    "\(header(message, "purger.source.partition") ?? "?")/\(header(message, "purger.source.offset") ?? "?")"
                #expect(bySource.updateValue(message, forKey: source) == nil, "one dead letter per source: \(source)")
            }
            for (index, invalidCase) in invalidAt.sorted(by: { $0.key < $1.key }) {
                let report = reports[index]
                let source = "\(report.topicPartition.partition)/\(report.offset)"
                guard let message = bySource[source] else {
                    Issue.record("no dead letter for \(invalidCase.name) at \(source)")
                    continue
                }
                #expect(message.key == invalidCase.key, "key of \(invalidCase.name)")
                #expect(message.value == invalidCase.value, "value of \(invalidCase.name)")
                #expect(header(message, "purger.error.code") == invalidCase.code, "code of \(invalidCase.name)")
                #expect(header(message, "purger.error.message")?.isEmpty == false, "message of \(invalidCase.name)")
                #expect(header(message, "purger.source.topic") == fixture.requestsTopic)
            }
            await producer.close()
            await fixture.simulator.shutdown()
        }

        @Test func aDeadLetterTooLargeForItsTopicGoesWithoutItsValueInsteadOfStoppingTheWorker() async throws {
            let fixture = try await PipelineFixture()
            let uploads = fixture.simulator.uploadIDs(environment: nil)
            let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 2_000_000)
            var records: [(key: [UInt8]?, value: [UInt8]?)] = [(Array("huge".utf8), huge)]
            for index in 0..<20 {
                records.append((nil, requestJSON(id: "valid-\(index)", uploads: [uploads[index]], environment: nil)))
            }
            let producer = try fixture.producer(properties: ["message.max.bytes": "4000000"])
            _ = try await fixture.produce(records: records, with: producer)
            await producer.close()

            // The worker keeps librdkafka's default limit (1,000,000 bytes), so the original cannot be re-sent.
            let worker = fixture.worker(try fixture.settings(group: "purger-\(UUID())"))
            let (deadLetters, failure) = try await withRunningWorker(worker) {
                _ = try await fixture.read(fixture.resultsTopic, timeout: .seconds(60)) { messages in
                    reportedRequestIDs(messages).count >= 20
                }
                return try await fixture.read(fixture.dlqTopic, timeout: .seconds(30)) { $0.count >= 1 }
            }
            #expect(failure == nil)
            let deadLetter = try #require(deadLetters.first)
            #expect(deadLetters.count == 1)
            #expect(deadLetter.key == Array("huge".utf8))
            #expect(deadLetter.value == nil)
            let headers = Dictionary(
                deadLetter.headers.map { ($0.name, String(decoding: $0.value ?? [], as: UTF8.self)) }
            ) { first, _ in first }
            #expect(headers["purger.error.code"] == "payload_too_large")
            #expect(headers["purger.value.omitted"] == "2000000")
            await fixture.simulator.shutdown()
        }
    }
}
