import DatoCMS
import Foundation
import Purger
import Testing

@Suite struct CompletionEventTests {
    let batchID = BatchID(uuid: UUID(uuidString: "0F8E2F0C-3B7E-4C1E-9A53-1D1F0C2B7A11")!)
    let ids = [UploadID(validating: "q0VNpiNQSkG6z0lif_O1zg")!, UploadID(validating: "20042921")!]
    let requests = [
        RequestRef(
            requestID: "article-4711-cleanup",
            source: SourcePosition(topic: "upload-deletion-requests", partition: 3, offset: 1187)
        )
    ]
    let enqueued = Date(timeIntervalSince1970: 1_795_860_000.120)
    let submitted = Date(timeIntervalSince1970: 1_795_860_002.130)
    let completed = Date(timeIntervalSince1970: 1_795_860_003.410)

    private func event(
        status: CompletionEvent.Status = .completed,
        environment: String? = nil,
        jobIDs: [String] = ["4235"],
        jobStatus: Int? = 200,
        successful: Int = 1,
        notFound: Int = 0,
        failed: Int = 1,
        failedUploadIDs: [UploadID]? = nil,
        counts: CompletionEvent.Counts = .inferred,
        uploadIDs: [UploadID]? = nil,
        error: String? = nil,
        submittedAt: Date?? = .none
    ) throws(CompletionEventError) -> CompletionEvent {
        try CompletionEvent(
            batchID: batchID,
            environment: environment,
            status: status,
            jobIDs: jobIDs,
            jobStatus: jobStatus,
            successful: successful,
            notFound: notFound,
            failed: failed,
            failedUploadIDs: failedUploadIDs,
            counts: counts,
            uploadIDs: uploadIDs ?? ids,
            requests: requests,
            error: error,
            attempts: 1,
            polls: 2,
            lookups: 1,
            firstEnqueuedAt: enqueued,
            submittedAt: submittedAt ?? submitted,
            completedAt: completed
        )
    }

    @Test func writesTheContractShapeInContractOrder() throws {
        let json = String(decoding: try event(failedUploadIDs: [ids[0]], counts: .exact).jsonBytes(), as: UTF8.self)
        let expected = """
            {"schema":"upload-deletion-result/v2","batch_id":"0f8e2f0c-3b7e-4c1e-9a53-1d1f0c2b7a11",\
            "environment":null,"status":"completed","job_id":"4235","job_ids":["4235"],"job_status":200,\
            "requested":2,"successful":1,"not_found":0,"failed":1,"failed_upload_ids":["q0VNpiNQSkG6z0lif_O1zg"],\
            "counts":"exact","upload_ids":["q0VNpiNQSkG6z0lif_O1zg","20042921"],\
            "requests":[{"request_id":"article-4711-cleanup","topic":"upload-deletion-requests","partition":3,\
            "offset":1187}],"error":null,"attempts":1,"polls":2,"lookups":1,\
            "first_enqueued_at":"2026-11-28T10:00:00.120Z",\
            "submitted_at":"2026-11-28T10:00:02.130Z","completed_at":"2026-11-28T10:00:03.410Z"}
            """
        #expect(json == expected)
    }

    @Test func writesAbsentValuesAsExplicitNulls() throws {
        let rejected = try event(
            status: .rejected,
            jobIDs: [],
            jobStatus: nil,
            successful: 0,
            failed: 2,
            error: "422 INVALID_FIELD",
            submittedAt: .some(nil)
        )
        let json = try jsonObject(rejected.jsonBytes())
        #expect(json.count == 22)
        for key in ["environment", "job_id", "job_status", "failed_upload_ids", "submitted_at"] {
            #expect(json[key] is NSNull, "\(key) should be null")
        }
        #expect(json["status"] as? String == "rejected")
        #expect(json["error"] as? String == "422 INVALID_FIELD")
    }

    @Test func writesTheEnvironmentWhenNotPrimary() throws {
        let json = try jsonObject(try event(environment: "staging-sandbox").jsonBytes())
        #expect(json["environment"] as? String == "staging-sandbox")
    }

    @Test func writesTimedOutAsSnakeCase() throws {
        let json = try jsonObject(try event(status: .timedOut, jobStatus: nil, successful: 0, failed: 2).jsonBytes())
        #expect(json["status"] as? String == "timed_out")
    }

    @Test func writesRequestIDsWithSlashesUnescaped() throws {
        let bytes = try event().jsonBytes()
        #expect(!String(decoding: bytes, as: UTF8.self).contains("\\/"))
    }

    @Test func countsRequestedFromTheDistinctIDs() throws {
        #expect(try event().requested == 2)
    }

    @Test func refusesCountsThatDoNotAddUpToRequested() throws {
        #expect(throws: CompletionEventError.self) { try event(successful: 2, failed: 1) }
        #expect(throws: CompletionEventError.self) { try event(successful: 0, failed: 1) }
        #expect(throws: CompletionEventError.self) { try event(successful: 3, failed: -1) }
        #expect(throws: CompletionEventError.self) { try event(successful: 1, notFound: 1, failed: 1) }
        #expect(throws: CompletionEventError.self) { try event(successful: 1, notFound: -1, failed: 2) }
        #expect(try event(successful: 0, notFound: 1, failed: 1).requested == 2)
    }

    @Test func refusesExactCountsThatDoNotNameTheFailedIDs() throws {
        #expect(throws: CompletionEventError.self) { try event(failedUploadIDs: nil, counts: .exact) }
        #expect(try event(successful: 1, notFound: 1, failed: 0, failedUploadIDs: [], counts: .exact).failed == 0)
    }

    @Test func refusesARejectionWithSuccesses() {
        #expect(throws: CompletionEventError.self) { try event(status: .rejected, successful: 1, failed: 1) }
    }

    @Test func refusesFailedIDsThatDoNotMatchTheFailedCount() {
        #expect(throws: CompletionEventError.self) { try event(failedUploadIDs: []) }
        #expect(throws: CompletionEventError.self) { try event(failedUploadIDs: [uploadID(99)]) }
        #expect(throws: CompletionEventError.self) {
            try event(successful: 0, failed: 2, failedUploadIDs: [ids[0], ids[0]])
        }
    }

    @Test func refusesEmptyOrDuplicatedUploadIDs() {
        #expect(throws: CompletionEventError.self) { try event(successful: 0, failed: 0, uploadIDs: []) }
        #expect(throws: CompletionEventError.self) { try event(uploadIDs: [ids[0], ids[0]]) }
    }

    @Test func takesIdentityIDsAndEnqueueTimeFromTheOperation() throws {
        let operation = BulkOperation(
            batchID: batchID,
            environment: "main",
            uploadIDs: ids,
            requests: [],
            firstEnqueuedAt: .now,
            firstEnqueuedWallTime: enqueued
        )
        let outcome = BulkDestroyOutcome(
            status: .completed, jobIDs: [JobID("1"), JobID("2")], jobStatus: 200, requested: 2, deleted: 1,
            notFound: 1, stillPresent: 0, stillPresentIDs: [], counts: .exact, goneIDs: ids, error: nil, attempts: 2,
            polls: 3, lookups: 1, submittedAt: submitted, completedAt: completed)
        let event = try CompletionEvent(operation: operation, requests: requests, outcome: outcome)
        #expect(event.jobIDs == ["1", "2"])
        #expect(event.jobID == "1")
        #expect((event.successful, event.notFound, event.failed) == (1, 1, 0))
        #expect(event.counts == .exact)
        #expect(event.lookups == 1)
        #expect(event.batchID == batchID)
        #expect(event.environment == "main")
        #expect(event.uploadIDs == ids)
        #expect(event.requests == requests)
        #expect(event.firstEnqueuedAt == enqueued)
    }
}

@Suite struct CompletionEventEncodingTests {
    @Test func encodesThroughAnyEncoderWithExplicitNulls() throws {
        let event = try CompletionEvent(
            batchID: BatchID(),
            environment: nil,
            status: .timedOut,
            jobIDs: [],
            jobStatus: nil,
            successful: 0,
            notFound: 0,
            failed: 1,
            failedUploadIDs: nil,
            counts: .inferred,
            uploadIDs: [uploadID(1)],
            requests: [RequestRef(requestID: "line\nbreak \"quoted\"", source: position(0))],
            error: "no job result within 600s",
            attempts: 1,
            polls: 40,
            lookups: 0,
            firstEnqueuedAt: Date(timeIntervalSince1970: 0),
            submittedAt: nil,
            completedAt: Date(timeIntervalSince1970: 600)
        )
        let viaEncoder = try jsonObject(Array(JSONEncoder().encode(event)))
        let viaBytes = try jsonObject(event.jsonBytes())
        #expect(viaEncoder.count == 22)
        #expect(viaEncoder["submitted_at"] is NSNull)
        #expect(viaEncoder["job_id"] is NSNull)
        #expect(NSDictionary(dictionary: viaEncoder).isEqual(to: viaBytes))
        let requests = try #require(viaBytes["requests"] as? [[String: Any]])
        #expect(requests.first?["request_id"] as? String == "line\nbreak \"quoted\"")
    }
}
