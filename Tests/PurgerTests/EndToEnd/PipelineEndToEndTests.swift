import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

@Suite("Pipeline end to end", .serialized, .timeLimit(.minutes(5)))
struct PipelineEndToEndTests {
    /// Requests over two environments: single and multi-id, duplicates across requests, in-use and unknown ids.
    static func generateRequests(
        count: Int, fixture: PipelineFixture, seed: UInt64 = 7
    ) -> (values: [[UInt8]], ids: [String?: Set<UploadID>], requests: [String: Set<String>]) {
        var random = SplitMix64(seed: seed)
        let primary = fixture.simulator.uploadIDs(environment: nil)
        let staging = fixture.simulator.uploadIDs(environment: "staging")
        var values: [[UInt8]] = []
        var ids: [String?: Set<UploadID>] = [nil: [], "staging": []]
        var requests: [String: Set<String>] = [:]
        for index in 0..<count {
            let environment: String? = random.next() % 3 == 0 ? "staging" : nil
            let pool = environment == nil ? primary : staging
            let size = random.next() % 10 == 0 ? Int(random.next() % 20) + 2 : 1
            var uploads: [UploadID] = []
            for _ in 0..<size {
                if random.next() % 50 == 0 {
                    uploads.append(UploadID(validating: String(100_000 + random.next() % 900_000))!)
                } else {
                    uploads.append(pool[Int(random.next() % UInt64(pool.count))])
                }
            }
            let requestID = "req-\(index)"
            requests[requestID] = Set(uploads.map(\.rawValue))
            ids[environment, default: []].formUnion(uploads)
            values.append(requestJSON(id: requestID, uploads: uploads, environment: environment))
        }
        return (values, ids, requests)
    }

    @Test func everyRequestIsAccountedWithExactCountsAndOffsetsCommitted() async throws {
        let fixture = try await PipelineFixture()
        let (values, ids, requests) = Self.generateRequests(count: 20_000, fixture: fixture)
        let producer = try fixture.producer()
        try await fixture.produce(values, with: producer)
        let group = "purger-\(UUID())"
        let worker = fixture.worker(try fixture.settings(group: group))
        let expectedRequests = requests.count
        let (messages, failure) = try await withRunningWorker(worker) {
            try await fixture.read(fixture.resultsTopic) { messages in
                Set(messages.flatMap { (try? ReadEvent($0))?.requests.map(\.request_id) ?? [] }).count
                    >= expectedRequests
            }
        }
        #expect(failure == nil)
        let events = try messages.map(ReadEvent.init)
        #expect(events.allSatisfy { $0.schema == "upload-deletion-result/v2" && $0.status == "completed" })
        #expect(events.allSatisfy { $0.upload_ids.count <= 200 && $0.requested == $0.upload_ids.count })
        #expect(events.allSatisfy { $0.successful + $0.not_found + $0.failed == $0.requested })
        // Three outcomes, exact: the still-present ids named, the rest absent, `successful` what the event's jobs
        // deleted. The workload repeats ids across requests and names unknown ones: some are not found.
        #expect(events.allSatisfy { $0.counts == "exact" && $0.failed_upload_ids?.count == $0.failed })
        #expect(events.contains { $0.not_found > 0 } && events.contains { $0.failed > 0 })
        let jobDeletions = Dictionary(
            fixture.simulator.stats().jobs.map { ($0.id, $0.deleted) }, uniquingKeysWith: +)
        #expect(events.filter { $0.successful != $0.job_ids.reduce(0) { $0 + (jobDeletions[$1] ?? 0) } }.isEmpty)
        for environment in [nil, "staging"] as [String?] {
            let existing = Set(fixture.simulator.existingUploadIDs(environment: environment).map(\.rawValue))
            let inEnvironment = events.filter { $0.environment == environment }
            let named = Set(inEnvironment.flatMap { $0.failed_upload_ids ?? [] })
            #expect(named.isSubset(of: existing), "ids named still present exist")
            #expect(Set(inEnvironment.flatMap(\.upload_ids)).subtracting(named).isDisjoint(with: existing))
        }
        for environment in [nil, "staging"] as [String?] {
            let reported = events.filter { $0.environment == environment }.flatMap(\.upload_ids)
            let expected = Set(ids[environment]!.map(\.rawValue))
            #expect(
                Set(reported).symmetricDifference(expected).count == 0, "ids reported in \(environment ?? "primary")")
            let successful = events.filter { $0.environment == environment }.reduce(0) { $0 + $1.successful }
            #expect(successful == fixture.simulator.deletedUploadIDs(environment: environment).count)
        }
        // Each id of a request appears in an event that lists the request. Not necessarily in one only: the workload
        // repeats ids across requests, and an id of a request split over two batches, finished in the first, goes
        // again (known gone, reported not found) into the second for a later request that names it too; and the
        // group may redeliver a request (at-least-once: librdkafka 2.0.2's mock cluster can rebalance a lone member
        // at start). Deleting twice is what must never happen (below).
        var reportedPerRequest: [String: Set<String>] = [:]
        for event in events {
            for request in Set(event.requests.map(\.request_id)) {
                reportedPerRequest[request, default: []].formUnion(
                    event.upload_ids.filter { requests[request]!.contains($0) })
            }
        }
        #expect(reportedPerRequest.count == requests.count)
        let misreported = requests.filter { request, uploads in reportedPerRequest[request] != uploads }
        #expect(
            misreported.count == 0,
            "requests with ids in no event that lists them: \(Array(misreported.keys.prefix(5)))")
        #expect(fixture.simulator.stats().doubleDeletions == 0)

        let consumed = try await fixture.read(fixture.requestsTopic) { $0.count >= values.count }
        let committed = try await fixture.committedOffsets(group: group)
        for (partition, end) in fixture.endOffsets(of: consumed) {
            #expect(committed[partition] == .some(end), "partition \(partition) committed to its end")
        }
        await producer.close()
        await fixture.simulator.shutdown()
    }

    @Test func aRequestRepeatedAfterItsIdsAreGoneCostsNoAPIRequest() async throws {
        let fixture = try await PipelineFixture(partitions: 1)
        let inUse = fixture.simulator.inUseUploadIDs(environment: nil)
        let uploads = Array(fixture.simulator.uploadIDs(environment: nil).filter { !inUse.contains($0) }.prefix(40))
        let producer = try fixture.producer()
        let worker = fixture.worker(try fixture.settings(group: "purger-\(UUID())", maxWait: .milliseconds(50)))
        let (result, failure) = try await withRunningWorker(worker) {
            try await fixture.produce([requestJSON(id: "first", uploads: uploads, environment: nil)], with: producer)
            _ = try await fixture.read(fixture.resultsTopic) { $0.count >= 1 }
            let before = fixture.simulator.stats().requests
            try await fixture.produce([requestJSON(id: "again", uploads: uploads, environment: nil)], with: producer)
            let messages = try await fixture.read(fixture.resultsTopic) { $0.count >= 2 }
            return (try messages.map(ReadEvent.init), before, fixture.simulator.stats().requests)
        }
        #expect(failure == nil)
        let (events, before, after) = result
        let first = try #require(events.first { $0.requests.map(\.request_id) == ["first"] })
        let again = try #require(events.first { $0.requests.map(\.request_id) == ["again"] })
        #expect(first.successful == uploads.count)
        #expect(again.not_found == uploads.count)
        #expect(again.successful == 0 && again.failed == 0 && again.failed_upload_ids == [])
        #expect(again.counts == "exact")
        #expect(again.job_ids.isEmpty && again.submitted_at == nil && again.attempts == 0)
        #expect(after == before, "no API request for ids known gone: \(before) → \(after)")
        await producer.close()
        await fixture.simulator.shutdown()
    }
}
