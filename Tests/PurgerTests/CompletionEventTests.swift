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
        jobID: String? = "4235",
        jobStatus: Int? = 200,
        successful: Int = 1,
        failed: Int = 1,
        failedUploadIDs: [UploadID]? = nil,
        uploadIDs: [UploadID]? = nil,
        error: String? = nil,
        submittedAt: Date?? = .none
    ) throws(CompletionEventError) -> CompletionEvent {
        try CompletionEvent(
            batchID: batchID,
            environment: environment,
            status: status,
            jobID: jobID,
            jobStatus: jobStatus,
            successful: successful,
            failed: failed,
            failedUploadIDs: failedUploadIDs,
            uploadIDs: uploadIDs ?? ids,
            requests: requests,
            error: error,
            attempts: 1,
            polls: 2,
            firstEnqueuedAt: enqueued,
            submittedAt: submittedAt ?? submitted,
            completedAt: completed
        )
    }

    @Test func writesTheContractShapeInContractOrder() throws {
        let json = String(decoding: try event(failedUploadIDs: [ids[0]]).jsonBytes(), as: UTF8.self)
        let expected = """
            {"schema":"upload-deletion-result/v1","batch_id":"0f8e2f0c-3b7e-4c1e-9a53-1d1f0c2b7a11",\
            "environment":null,"status":"completed","job_id":"4235","job_status":200,"requested":2,\
            "successful":1,"failed":1,"failed_upload_ids":["q0VNpiNQSkG6z0lif_O1zg"],\
            "upload_ids":["q0VNpiNQSkG6z0lif_O1zg","20042921"],\
            "requests":[{"request_id":"article-4711-cleanup","topic":"upload-deletion-requests","partition":3,\
            "offset":1187}],"error":null,"attempts":1,"polls":2,"first_enqueued_at":"2026-11-28T10:00:00.120Z",\
            "submitted_at":"2026-11-28T10:00:02.130Z","completed_at":"2026-11-28T10:00:03.410Z"}
            """
        #expect(json == expected)
    }

    @Test func writesAbsentValuesAsExplicitNulls() throws {
        let rejected = try event(
            status: .rejected,
            jobID: nil,
            jobStatus: nil,
            successful: 0,
            failed: 2,
            error: "422 INVALID_FIELD",
            submittedAt: .some(nil)
        )
        let json = try jsonObject(rejected.jsonBytes())
        #expect(json.count == 18)
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

    @Test func refusesCountsThatDoNotAddUpToRequested() {
        #expect(throws: CompletionEventError.self) { try event(successful: 2, failed: 1) }
        #expect(throws: CompletionEventError.self) { try event(successful: 0, failed: 1) }
        #expect(throws: CompletionEventError.self) { try event(successful: 3, failed: -1) }
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
        let event = try CompletionEvent(
            operation: operation,
            requests: requests,
            status: .completed,
            jobID: "1",
            jobStatus: 200,
            successful: 2,
            failed: 0,
            failedUploadIDs: [],
            error: nil,
            attempts: 1,
            polls: 1,
            submittedAt: submitted,
            completedAt: completed
        )
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
            jobID: nil,
            jobStatus: nil,
            successful: 0,
            failed: 1,
            failedUploadIDs: nil,
            uploadIDs: [uploadID(1)],
            requests: [RequestRef(requestID: "line\nbreak \"quoted\"", source: position(0))],
            error: "no job result within 600s",
            attempts: 1,
            polls: 40,
            firstEnqueuedAt: Date(timeIntervalSince1970: 0),
            submittedAt: nil,
            completedAt: Date(timeIntervalSince1970: 600)
        )
        let viaEncoder = try jsonObject(Array(JSONEncoder().encode(event)))
        let viaBytes = try jsonObject(event.jsonBytes())
        #expect(viaEncoder.count == 18)
        #expect(viaEncoder["submitted_at"] is NSNull)
        #expect(viaEncoder["job_id"] is NSNull)
        #expect(NSDictionary(dictionary: viaEncoder).isEqual(to: viaBytes))
        let requests = try #require(viaBytes["requests"] as? [[String: Any]])
        #expect(requests.first?["request_id"] as? String == "line\nbreak \"quoted\"")
    }
}
