import Foundation
import Purger
import Testing

@Suite struct DeadLetterTests {
    let source = SourcePosition(topic: "upload-deletion-requests", partition: 3, offset: 1187)

    private func text(_ headers: [(key: String, value: [UInt8])]) -> [String] {
        headers.map { "\($0.key)=\(String(decoding: $0.value, as: UTF8.self))" }
    }

    @Test func writesTheFiveContractHeadersForAnInvalidRequest() {
        let invalid = InvalidRequest(
            code: .invalidUploadID, message: #"upload_ids[3] "abc" is not a DatoCMS upload id"#)
        #expect(
            text(DeadLetter.headers(for: invalid, source: source)) == [
                "purger.error.code=invalid_upload_id",
                #"purger.error.message=upload_ids[3] "abc" is not a DatoCMS upload id"#,
                "purger.source.topic=upload-deletion-requests",
                "purger.source.partition=3",
                "purger.source.offset=1187",
            ]
        )
    }

    @Test func encodesHeaderValuesAsUTF8() {
        let letter = DeadLetter(code: .invalidRequest, message: "environment \"ü\" is bad", source: source)
        #expect(letter.headers[1].value == Array("environment \"ü\" is bad".utf8))
    }

    @Test func describesAJobTimeout() {
        let batch = BatchID(uuid: UUID(uuidString: "0F8E2F0C-3B7E-4C1E-9A53-1D1F0C2B7A11")!)
        let letter = DeadLetter.jobTimeout(batch: batch, jobID: "4235", timeout: .seconds(600), source: source)
        #expect(
            text(letter.headers).prefix(2) == [
                "purger.error.code=job_timeout",
                "purger.error.message=job 4235 of batch 0f8e2f0c-3b7e-4c1e-9a53-1d1f0c2b7a11 had no result within 600s",
            ]
        )
        let unsubmitted = DeadLetter.jobTimeout(batch: batch, jobID: nil, timeout: .seconds(5), source: source)
        #expect(unsubmitted.message.hasPrefix("the job of batch"))
    }

    @Test func sharesEveryInvalidRequestCode() {
        for code in InvalidRequestCode.allCases {
            #expect(DeadLetterCode(code).rawValue == code.rawValue)
        }
        #expect(DeadLetterCode.allCases.count == InvalidRequestCode.allCases.count + 1)
    }
}
