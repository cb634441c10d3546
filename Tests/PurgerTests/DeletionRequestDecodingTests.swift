import DatoCMS
import Foundation
import Purger
import Testing

@Suite struct DeletionRequestDecodingTests {
    let source = SourcePosition(topic: "upload-deletion-requests", partition: 3, offset: 1187)

    private func decode(_ text: String) -> Result<DeletionRequest, InvalidRequest> {
        DeletionRequest.decode(value: Array(text.utf8), source: source)
    }

    private func failure(_ text: String) throws -> InvalidRequest {
        guard case .failure(let invalid) = decode(text) else {
            Issue.record("expected \(text) to be refused")
            throw CancellationError()
        }
        return invalid
    }

    // MARK: - Valid requests

    @Test func decodesTheContractExample() throws {
        let request = try decode(
            """
            {
              "request_id": "article-4711-cleanup",
              "upload_ids": ["q0VNpiNQSkG6z0lif_O1zg", "20042921"],
              "environment": "staging-sandbox",
              "requested_at": "2026-11-28T10:00:00Z"
            }
            """
        ).get()
        #expect(request.requestID == "article-4711-cleanup")
        #expect(request.uploadIDs.map(\.rawValue) == ["q0VNpiNQSkG6z0lif_O1zg", "20042921"])
        #expect(request.environment == "staging-sandbox")
        #expect(request.requestedAt == Date(timeIntervalSince1970: 1_795_860_000))
        #expect(request.source == source)
    }

    @Test func defaultsRequestIDToTopicPartitionOffset() throws {
        let request = try decode(#"{"upload_ids": ["1"]}"#).get()
        #expect(request.requestID == "upload-deletion-requests/3/1187")
        #expect(request.environment == nil)
        #expect(request.requestedAt == nil)
    }

    @Test func acceptsTheSingleUploadIDShorthand() throws {
        let request = try decode(#"{"upload_id": "q0VNpiNQSkG6z0lif_O1zg"}"#).get()
        #expect(request.uploadIDs == [UploadID(validating: "q0VNpiNQSkG6z0lif_O1zg")!])
    }

    @Test func collapsesDuplicateIDsKeepingFirstSeenOrder() throws {
        let request = try decode(#"{"upload_ids": ["3", "1", "3", "2", "1"]}"#).get()
        #expect(request.uploadIDs.map(\.rawValue) == ["3", "1", "2"])
    }

    @Test func ignoresUnknownFields() throws {
        let request = try decode(#"{"upload_ids": ["1"], "priority": 5, "meta": {"a": [null, true]}}"#).get()
        #expect(request.uploadIDs == [uploadID(1)])
    }

    @Test func acceptsExactlyOneThousandIDs() throws {
        let ids = (1...1000).map { "\"\($0)\"" }.joined(separator: ",")
        let request = try decode(#"{"upload_ids": [\#(ids)]}"#).get()
        #expect(request.uploadIDs.count == 1000)
    }

    @Test func acceptsARequestIDOfExactlyTwoHundredCharacters() throws {
        let id = String(repeating: "é", count: 200)
        let request = try decode(#"{"upload_id": "1", "request_id": "\#(id)"}"#).get()
        #expect(request.requestID == id)
    }

    @Test(arguments: [
        ("2026-11-28T10:00:00Z", 1_795_860_000.0),
        ("2026-11-28t10:00:00z", 1_795_860_000.0),
        ("2026-11-28T10:00:00.5Z", 1_795_860_000.5),
        ("2026-11-28T11:30:00+01:30", 1_795_860_000.0),
        ("2026-11-28T08:00:00-02:00", 1_795_860_000.0),
        ("2024-02-29T00:00:00Z", 1_709_164_800.0),
    ])
    func readsRFC3339RequestedAt(text: String, seconds: Double) throws {
        let request = try decode(#"{"upload_id": "1", "requested_at": "\#(text)"}"#).get()
        let requestedAt = try #require(request.requestedAt)
        #expect(abs(requestedAt.timeIntervalSince1970 - seconds) < 0.000_1)
    }

    @Test func acceptsAUTF8ByteOrderMarkFreeBodyWithWhitespace() throws {
        let request = try decode(" \n\t{\"upload_id\":\"7\"}\r\n ").get()
        #expect(request.uploadIDs == [uploadID(7)])
    }

    // MARK: - Framing

    @Test func refusesAMissingValueAsInvalidRequest() {
        guard case .failure(let invalid) = DeletionRequest.decode(value: nil, source: source) else {
            Issue.record("a tombstone was accepted")
            return
        }
        #expect(invalid.code == .invalidRequest)
        #expect(invalid.message.contains("no value"))
    }

    @Test func refusesAValueOverOneMebibyte() throws {
        let padding = String(repeating: " ", count: DeletionRequest.maxPayloadBytes)
        let invalid = try failure(#"{"upload_id": "1"}"# + padding)
        #expect(invalid.code == .payloadTooLarge)
        #expect(invalid.message == "the value is 1048594 bytes; at most 1048576 are accepted")
    }

    @Test func acceptsAValueOfExactlyOneMebibyte() throws {
        let body = #"{"upload_id": "1"}"#
        let padded = body + String(repeating: " ", count: DeletionRequest.maxPayloadBytes - body.utf8.count)
        #expect(padded.utf8.count == DeletionRequest.maxPayloadBytes)
        #expect(try decode(padded).get().uploadIDs == [uploadID(1)])
    }

    @Test func refusesInvalidUTF8AsInvalidJSON() {
        let bytes: [UInt8] = Array(#"{"upload_id": "1", "x": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        guard case .failure(let invalid) = DeletionRequest.decode(value: bytes, source: source) else {
            Issue.record("invalid UTF-8 was accepted")
            return
        }
        #expect(invalid == InvalidRequest(code: .invalidJSON, message: "the value is not valid UTF-8"))
    }

    @Test func refusesUTF16() {
        let utf16 = Array(#"{"upload_id":"1"}"#.data(using: .utf16LittleEndian)!)
        guard case .failure(let invalid) = DeletionRequest.decode(value: utf16, source: source) else {
            Issue.record("UTF-16 was accepted")
            return
        }
        #expect(invalid.code == .invalidJSON)
    }

    @Test(arguments: [
        "", "not json", "{", #"{"upload_id": "1",}"#, #"{"upload_id": '1'}"#, "{} {}", #"{"upload_id": "1"} // c"#,
        #"{upload_id: "1"}"#, #"{"upload_id": "1", "n": 01}"#, #"{"upload_id": "1", "n": NaN}"#,
        #"{"upload_id": "1", "a": [1,]}"#, "{\"upload_id\": \"1\", \"x\": \"tab\there\"}",
        #"{"upload_id": "\ud800"}"#, #"{"upload_id": "\x41"}"#, "\u{FEFF}{\"upload_id\": \"1\"}",
    ])
    func refusesMalformedJSON(text: String) throws {
        let invalid = try failure(text)
        #expect(invalid.code == .invalidJSON)
        #expect(invalid.message.hasPrefix("the value is not valid JSON (stopped at byte "))
    }

    @Test func saysWhereReadingStopped() throws {
        #expect(try failure(#"{"upload_id": "1",}"#).message == "the value is not valid JSON (stopped at byte 18)")
    }

    @Test func refusesARepeatedKey() throws {
        #expect(
            try failure(#"{"upload_id": "1", "upload_id": "2"}"#)
                == InvalidRequest(code: .invalidJSON, message: #"the object has the key "upload_id" twice"#)
        )
    }

    @Test func refusesNestingDeeperThanSixtyFourLevels() throws {
        // The request object itself is the first level.
        let deep = String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        #expect(try decode(#"{"upload_id": "1", "x": \#(deep)}"#).get().uploadIDs == [uploadID(1)])
        let tooDeep = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try failure(#"{"upload_id": "1", "x": \#(tooDeep)}"#).code == .invalidJSON)
    }

    @Test func readsEscapesInStrings() throws {
        let request = try decode(
            #"{"upload_id": "\u0031", "request_id": "a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#
        ).get()
        #expect(request.uploadIDs == [uploadID(1)])
        #expect(request.requestID == "a\"b\\c/d\né😀")
    }

    @Test func readsAllJSONValueKindsInIgnoredFields() throws {
        let text =
            #"{"upload_id": "1", "x": [0, -1, 1.5e3, -0.25E-2, 1e400, true, false, null, {}, [], "", {"a": {}}]}"#
        #expect(try decode(text).get().uploadIDs == [uploadID(1)])
    }

    @Test(arguments: [
        (#"["1"]"#, "an array"), (#""1""#, "a string"), ("42", "a number"), ("true", "a boolean"), ("null", "null"),
    ])
    func refusesJSONOtherThanAnObject(text: String, type: String) throws {
        let invalid = try failure(text)
        #expect(invalid == InvalidRequest(code: .invalidJSON, message: "the value is JSON but \(type), not an object"))
    }

    // MARK: - Upload ids

    @Test func refusesARequestWithNoIDs() throws {
        #expect(
            try failure(#"{"request_id": "x"}"#)
                == InvalidRequest(code: .invalidRequest, message: "neither upload_ids nor upload_id is given")
        )
    }

    @Test func refusesARequestWithBothIDFields() throws {
        #expect(
            try failure(#"{"upload_ids": ["1"], "upload_id": "2"}"#)
                == InvalidRequest(code: .invalidRequest, message: "give either upload_ids or upload_id, not both")
        )
    }

    @Test func refusesAnEmptyIDList() throws {
        #expect(
            try failure(#"{"upload_ids": []}"#)
                == InvalidRequest(code: .invalidRequest, message: "upload_ids is empty; give 1 to 1000 ids")
        )
    }

    @Test func refusesMoreThanOneThousandIDs() throws {
        let ids = (1...1001).map { "\"\($0)\"" }.joined(separator: ",")
        #expect(
            try failure(#"{"upload_ids": [\#(ids)]}"#)
                == InvalidRequest(
                    code: .tooManyUploadIDs,
                    message: "upload_ids has 1001 elements; at most 1000 are accepted"
                )
        )
    }

    @Test func countsDuplicatesTowardsTheLimit() throws {
        let ids = Array(repeating: "\"1\"", count: 1001).joined(separator: ",")
        #expect(try failure(#"{"upload_ids": [\#(ids)]}"#).code == .tooManyUploadIDs)
    }

    @Test(arguments: [
        (#""abc""#, "a string"), (#"{"id": "1"}"#, "an object"), ("1", "a number"), ("null", "null"),
        ("false", "a boolean"),
    ])
    func refusesUploadIDsThatAreNotAnArray(json: String, type: String) throws {
        #expect(
            try failure(#"{"upload_ids": \#(json)}"#)
                == InvalidRequest(code: .invalidRequest, message: "upload_ids is \(type), not an array of strings")
        )
    }

    @Test(arguments: [("1", "a number"), ("null", "null"), ("[\"1\"]", "an array"), ("true", "a boolean")])
    func refusesUploadIDElementsThatAreNotStrings(json: String, type: String) throws {
        #expect(
            try failure(#"{"upload_ids": ["1", "2", \#(json)]}"#)
                == InvalidRequest(code: .invalidRequest, message: "upload_ids[2] is \(type), not a string")
        )
    }

    @Test func namesTheMalformedIDAndItsIndex() throws {
        #expect(
            try failure(#"{"upload_ids": ["1", "2", "3", "abc"]}"#)
                == InvalidRequest(
                    code: .invalidUploadID,
                    message: #"upload_ids[3] "abc" is not a DatoCMS upload id "#
                        + "(22 URL-safe base64 characters or 1 to 15 digits)"
                )
        )
    }

    @Test(arguments: [
        "", "1234567890123456", "q0VNpiNQSkG6z0lif_O1z", "q0VNpiNQSkG6z0lif_O1zgg", "q0VNpiNQSkG6z0lif+O1zg",
        "12a", " 1", "-1", "١٢",
    ])
    func refusesMalformedIDs(text: String) throws {
        #expect(try failure(#"{"upload_ids": ["\#(text)"]}"#).code == .invalidUploadID)
        #expect(try failure(#"{"upload_id": "\#(text)"}"#).code == .invalidUploadID)
    }

    @Test func refusesAMalformedSingleID() throws {
        #expect(
            try failure(#"{"upload_id": "x y"}"#).message
                == #"upload_id "x y" is not a DatoCMS upload id (22 URL-safe base64 characters or 1 to 15 digits)"#
        )
    }

    @Test(arguments: [("5", "a number"), ("null", "null"), (#"["1"]"#, "an array")])
    func refusesASingleIDThatIsNotAString(json: String, type: String) throws {
        #expect(
            try failure(#"{"upload_id": \#(json)}"#)
                == InvalidRequest(code: .invalidRequest, message: "upload_id is \(type), not a string")
        )
    }

    @Test func cutsAndEscapesLongMalformedIDsInTheMessage() throws {
        let long = String(repeating: "x", count: 500) + "\\n\\\""
        let message = try failure(#"{"upload_id": "\#(long)"}"#).message
        #expect(message.hasPrefix("upload_id \"" + String(repeating: "x", count: 40) + "…\" is not"))
        #expect(!message.contains("\n"))
    }

    @Test func escapesControlCharactersInTheMessage() throws {
        let message = try failure(#"{"upload_id": "a\nb\"c"}"#).message
        #expect(message.hasPrefix(#"upload_id "a\nb\"c" is not"#))
    }

    // MARK: - Other fields

    @Test(arguments: [("5", "a number"), ("null", "null"), ("{}", "an object"), ("true", "a boolean")])
    func refusesARequestIDThatIsNotAString(json: String, type: String) throws {
        #expect(
            try failure(#"{"upload_id": "1", "request_id": \#(json)}"#)
                == InvalidRequest(code: .invalidRequest, message: "request_id is \(type), not a string")
        )
    }

    @Test func refusesARequestIDOverTwoHundredCharacters() throws {
        let id = String(repeating: "r", count: 201)
        #expect(
            try failure(#"{"upload_id": "1", "request_id": "\#(id)"}"#)
                == InvalidRequest(
                    code: .invalidRequest,
                    message: "request_id has 201 characters; at most 200 are accepted"
                )
        )
    }

    @Test func refusesAnEmptyRequestID() throws {
        #expect(try failure(#"{"upload_id": "1", "request_id": ""}"#).code == .invalidRequest)
    }

    @Test(arguments: [("5", "a number"), ("null", "null"), (#"["main"]"#, "an array")])
    func refusesAnEnvironmentThatIsNotAString(json: String, type: String) throws {
        #expect(
            try failure(#"{"upload_id": "1", "environment": \#(json)}"#)
                == InvalidRequest(code: .invalidRequest, message: "environment is \(type), not a string")
        )
    }

    @Test(arguments: ["", "staging sandbox", "main\r\nX-Injected: 1", "ümlaut", String(repeating: "e", count: 101)])
    func refusesEnvironmentNamesThatCannotTravelInAHeader(name: String) throws {
        let json = String(decoding: try JSONEncoder().encode(["upload_id": "1", "environment": name]), as: UTF8.self)
        let invalid = try failure(json)
        #expect(invalid.code == .invalidRequest)
        #expect(invalid.message.hasPrefix("environment "))
    }

    @Test(arguments: ["main", "staging-sandbox", "feature_42", String(repeating: "e", count: 100)])
    func acceptsEnvironmentNames(name: String) throws {
        #expect(try decode(#"{"upload_id": "1", "environment": "\#(name)"}"#).get().environment == name)
    }

    @Test(arguments: [("5", "a number"), ("null", "null")])
    func refusesARequestedAtThatIsNotAString(json: String, type: String) throws {
        #expect(
            try failure(#"{"upload_id": "1", "requested_at": \#(json)}"#)
                == InvalidRequest(code: .invalidRequest, message: "requested_at is \(type), not a string")
        )
    }

    @Test(arguments: [
        "yesterday", "2026-11-28", "2026-11-28T10:00:00", "2026-11-28 10:00:00Z", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28T10:60:00Z",
        "2026-11-28T10:00:00.Z", "2026-11-28T10:00:00+0100", "2026-11-28T10:00:00+24:00", "2026-11-28T10:00:00Zjunk",
        "26-11-28T10:00:00Z",
    ])
    func refusesRequestedAtThatIsNotRFC3339(text: String) throws {
        let invalid = try failure(#"{"upload_id": "1", "requested_at": "\#(text)"}"#)
        #expect(invalid.code == .invalidRequest)
        #expect(invalid.message.hasPrefix("requested_at \"\(text)\" is not an RFC 3339 time"))
    }

    @Test func describesItselfWithCodeAndMessage() {
        #expect(InvalidRequest(code: .tooManyUploadIDs, message: "m").description == "too_many_upload_ids: m")
    }

    @Test func usesTheContractCodes() {
        #expect(
            InvalidRequestCode.allCases.map(\.rawValue)
                == ["invalid_json", "invalid_request", "invalid_upload_id", "too_many_upload_ids", "payload_too_large"]
        )
    }
}
