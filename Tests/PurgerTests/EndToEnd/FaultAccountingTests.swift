import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

/// The fault suite's accounting catches what it exists to catch, on hand-made ledgers (no Kafka, no simulator).
@Suite("Fault suite accounting")
struct FaultAccountingTests {
    static let topic = "requests"
    static let idA = "q0VNpiNQSkG6z0lif_O1zg"
    static let idB = "20042921"
    static let idC = "7777777"

    static func position(_ offset: Int64) -> SourcePosition {
        SourcePosition(topic: topic, partition: 0, offset: offset)
    }

    static func valid(_ offset: Int64, _ ids: [String]) -> (SourcePosition, ProducedMessage) {
        let json =
            #"{"request_id": "r-\#(offset)", "upload_ids": [\#(ids.map { "\"\($0)\"" }.joined(separator: ","))]}"#
        return (position(offset), ProducedMessage(value: Array(json.utf8), position: position(offset), fuzzed: false))
    }

    static func invalid(_ offset: Int64) -> (SourcePosition, ProducedMessage) {
        (position(offset), ProducedMessage(value: Array("not json".utf8), position: position(offset), fuzzed: true))
    }

    static func event(
        _ offsets: [Int64], ids: [String], failed: [String]?, successful: Int? = nil, notFound: Int = 0,
        counts: String? = nil, jobIDs: [String] = ["1"]
    ) -> KafkaMessage {
        let requests = offsets.map {
            #"{"request_id": "r-\#($0)", "topic": "\#(topic)", "partition": 0, "offset": \#($0)}"#
        }
        let failedJSON = failed.map { "[" + $0.map { "\"\($0)\"" }.joined(separator: ",") + "]" } ?? "null"
        let json = """
            {"schema": "upload-deletion-result/v2", "batch_id": "\(UUID())", "environment": null, \
            "status": "completed", "job_id": "\(jobIDs.first ?? "")", \
            "job_ids": [\(jobIDs.map { "\"\($0)\"" }.joined(separator: ","))], "requested": \(ids.count), \
            "successful": \(successful ?? (ids.count - (failed?.count ?? 0) - notFound)), "not_found": \(notFound), \
            "failed": \(failed?.count ?? (ids.count - (successful ?? 0) - notFound)), \
            "failed_upload_ids": \(failedJSON), "counts": "\(counts ?? (failed == nil ? "inferred" : "exact"))", \
            "submitted_at": "2026-11-28T10:00:00.000Z", "completed_at": "2026-11-28T10:00:10.000Z", \
            "upload_ids": [\(ids.map { "\"\($0)\"" }.joined(separator: ","))], \
            "requests": [\(requests.joined(separator: ","))], "attempts": 1, "polls": 1, "lookups": 0}
            """
        return KafkaMessage(
            topicPartition: TopicPartition(topic: "results", partition: 0), offset: 0, key: nil,
            value: Array(json.utf8), headers: [], timestamp: nil)
    }

    static func deadLetter(_ offset: Int64, code: String) -> KafkaMessage {
        KafkaMessage(
            topicPartition: TopicPartition(topic: "dlq", partition: 0), offset: 0, key: nil, value: nil,
            headers: [
                KafkaHeader(name: "purger.error.code", text: code),
                KafkaHeader(name: "purger.source.topic", text: topic),
                KafkaHeader(name: "purger.source.partition", text: "0"),
                KafkaHeader(name: "purger.source.offset", text: "\(offset)"),
            ], timestamp: nil)
    }

    /// A simulator job as `GET /_simulator/stats` reports it, started 1 s after the events' `submitted_at`.
    static func job(_ id: String, deleted: Int, lostIDs: [String]? = nil) throws -> SimulatorStats.Job {
        let lost = lostIDs.map { "[" + $0.map { "\"\($0)\"" }.joined(separator: ",") + "]" } ?? "null"
        let json = """
            {"id": "\(id)", "uploads": 1, "durationSeconds": 0.1, "polls": 1, "noticedAfterSeconds": 0.2, \
            "failedWith500": false, "deleted": \(deleted), "responseLost": \(lostIDs != nil), \
            "startedAt": \(1_795_860_001.0), "lostUploadIDs": \(lost)}
            """
        return try JSONDecoder().decode(SimulatorStats.Job.self, from: Data(json.utf8))
    }

    static func account(
        _ produced: [(SourcePosition, ProducedMessage)], _ messages: [KafkaMessage], deleted: Set<String> = [],
        existing: Set<String> = [], jobs: [SimulatorStats.Job] = []
    ) -> (FaultAccounting, PublishedLedger) {
        var ledger = PublishedLedger(resultsTopic: "results", dlqTopic: "dlq")
        ledger.absorb(messages)
        let accounting = FaultAccounting(
            produced: Dictionary(uniqueKeysWithValues: produced), ledger: ledger, deleted: [nil: deleted],
            existing: [nil: existing], doubleDeletions: 0, jobs: jobs)
        return (accounting, ledger)
    }

    @Test func aMessageInNoEventAndNoDeadLetterIsLostAndAWrongCodeIsMisrouted() {
        let (accounting, ledger) = Self.account(
            [Self.valid(0, [Self.idA]), Self.valid(1, [Self.idB]), Self.invalid(2), Self.invalid(3), Self.invalid(4)],
            [
                Self.event([0], ids: [Self.idA], failed: []), Self.deadLetter(2, code: "invalid_json"),
                Self.deadLetter(3, code: "invalid_request"),
            ])
        #expect(accounting.produced == 5)
        #expect(accounting.inEvents == 1)
        #expect(accounting.deadLettered == 2)
        #expect(accounting.lost == 2)
        #expect(accounting.misrouted == 1)
        #expect(ledger.accountedCount == 3)
    }

    @Test func idsMissingFromARequestsEventsAndRepeatedReportsAreCounted() {
        let (accounting, _) = Self.account(
            [Self.valid(0, [Self.idA, Self.idB]), Self.valid(1, [Self.idC])],
            [
                Self.event([0], ids: [Self.idA], failed: []), Self.event([1], ids: [Self.idC], failed: []),
                Self.event([1], ids: [Self.idC], failed: [Self.idC]),
            ])
        #expect(accounting.lost == 0)
        #expect(accounting.requestsMissingIDs == 1)
        #expect(accounting.duplicateRequests == 1)
    }

    @Test func deletionsAreReconciledWithTheEvents() {
        // idA: requested and confirmed; idB: deleted but in no event and asked for by no request; idC: an event says
        // deleted but the simulator still has it.
        let (accounting, _) = Self.account(
            [Self.valid(0, [Self.idA, Self.idC])], [Self.event([0], ids: [Self.idA, Self.idC], failed: [])],
            deleted: [Self.idA, Self.idB], existing: [Self.idC])
        #expect(accounting.simulatorDeletions == 2)
        #expect(accounting.deletedConfirmed == 1)
        #expect(accounting.deletedUnreported == 1)
        #expect(accounting.deletedUnrequested == 1)
        #expect(accounting.reportedDeletedButExisting == 1)
        #expect(accounting.inconsistentEvents == 0)
    }

    @Test func exactCountsAreCheckedAgainstTheJobsOfTheEvent() throws {
        // Event 1 claims 2 deletions, its job made 1; event 2 is right.
        let (accounting, ledger) = Self.account(
            [Self.valid(0, [Self.idA, Self.idB]), Self.valid(1, [Self.idC])],
            [
                Self.event([0], ids: [Self.idA, Self.idB], failed: [], jobIDs: ["1"]),
                Self.event([1], ids: [Self.idC], failed: [], jobIDs: ["2"]),
            ],
            deleted: [Self.idA, Self.idC], jobs: [try Self.job("1", deleted: 1), try Self.job("2", deleted: 1)])
        #expect(ledger.events.count == 2)
        #expect(accounting.exactCountMismatches == 1)
        #expect(accounting.exactSuccessful == 3)
        #expect(accounting.exactJobDeletions == 2)
    }

    @Test func anIdNamedFailedThatIsGoneIsCaught() {
        let (accounting, _) = Self.account(
            [Self.valid(0, [Self.idA, Self.idB])],
            [Self.event([0], ids: [Self.idA, Self.idB], failed: [Self.idB], successful: 0, notFound: 1)],
            deleted: [Self.idA, Self.idB])
        #expect(accounting.namedFailedButGone == 1)
        #expect(accounting.inconsistentEvents == 0)
        #expect(accounting.namingShare == 1)
    }

    @Test func inferredCountsMustBracketWhatTheJobsDeleted() throws {
        // A lost job deleted 2 of event 1's ids: 0 certain + 2 not found brackets it. Event 2 claims 0 + 0 but its
        // job deleted 1.
        let (accounting, _) = Self.account(
            [Self.valid(0, [Self.idA, Self.idB]), Self.valid(1, [Self.idC])],
            [
                Self.event(
                    [0], ids: [Self.idA, Self.idB], failed: [], successful: 0, notFound: 2, counts: "inferred",
                    jobIDs: []),
                Self.event([1], ids: [Self.idC], failed: [Self.idC], successful: 0, counts: "inferred", jobIDs: ["2"]),
            ],
            deleted: [Self.idA, Self.idB, Self.idC],
            jobs: [try Self.job("1", deleted: 2, lostIDs: [Self.idA, Self.idB]), try Self.job("2", deleted: 1)])
        #expect(accounting.inferredEvents == 2)
        #expect(accounting.inferredOutOfBounds == 1)
    }
}
