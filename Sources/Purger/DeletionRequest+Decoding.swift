import DatoCMS
import Foundation

extension DeletionRequest {
    /// Decodes and validates a Kafka message value as a deletion request (CONTRACT §2).
    ///
    /// Returns `.failure` for anything the contract does not accept, with the first fault found; nothing from an
    /// invalid request may be deleted. In particular: a missing value (tombstone) or a `null` field is
    /// `invalid_request`; invalid UTF-8, a NUL byte, malformed JSON or a top-level value other than an object is
    /// `invalid_json`; a value over 1 MiB is `payload_too_large` (checked before anything else); an empty id list
    /// is `invalid_request`. Fields the contract does not name are ignored.
    public static func decode(value: [UInt8]?, source: SourcePosition) -> Result<DeletionRequest, InvalidRequest> {
        Result { () throws(InvalidRequest) in try decodeOrThrow(value: value, source: source) }
    }

    private static func decodeOrThrow(value: [UInt8]?, source: SourcePosition) throws(InvalidRequest) -> Self {
        guard let value else {
            throw InvalidRequest(
                code: .invalidRequest,
                message: "the message has no value (a tombstone); expected a JSON object"
            )
        }
        guard value.count <= maxPayloadBytes else {
            throw InvalidRequest(
                code: .payloadTooLarge,
                message: "the value is \(value.count) bytes; at most \(maxPayloadBytes) are accepted"
            )
        }
        let fields = try parseObject(value)

        let uploadIDs = try decodeUploadIDs(fields)
        let requestID = try decodeRequestID(fields["request_id"])
        let environment = try decodeEnvironment(fields["environment"])
        let requestedAt = try decodeRequestedAt(fields["requested_at"])
        return DeletionRequest(
            requestID: requestID,
            uploadIDs: uploadIDs,
            environment: environment,
            requestedAt: requestedAt,
            source: source
        )
    }

    // MARK: - JSON

    private static func parseObject(_ value: [UInt8]) throws(InvalidRequest) -> [String: JSONValue] {
        guard String(validating: value, as: UTF8.self) != nil else {
            throw InvalidRequest(code: .invalidJSON, message: "the value is not valid UTF-8")
        }
        let parsed: JSONValue
        do throws(JSONParser.Failure) {
            parsed = try JSONParser.parse(value)
        } catch {
            throw InvalidRequest(
                code: .invalidJSON,
                message: "the value is not valid JSON (stopped at byte \(error.offset))"
            )
        }
        guard case .object(let members) = parsed else {
            throw InvalidRequest(
                code: .invalidJSON,
                message: "the value is JSON but \(parsed.typeDescription), not an object"
            )
        }
        var fields: [String: JSONValue] = [:]
        for member in members {
            // A repeated key means different readers may see different requests; refuse rather than guess.
            guard fields.updateValue(member.value, forKey: member.key) == nil else {
                throw InvalidRequest(code: .invalidJSON, message: "the object has the key \(quoted(member.key)) twice")
            }
        }
        return fields
    }

    // MARK: - Fields

    private static func decodeUploadIDs(_ fields: [String: JSONValue]) throws(InvalidRequest) -> [UploadID] {
        switch (fields["upload_ids"], fields["upload_id"]) {
        case (nil, nil):
            throw InvalidRequest(code: .invalidRequest, message: "neither upload_ids nor upload_id is given")
        case (.some, .some):
            throw InvalidRequest(code: .invalidRequest, message: "give either upload_ids or upload_id, not both")
        case (nil, .some(let single)):
            guard case .string(let text) = single else {
                throw InvalidRequest(
                    code: .invalidRequest,
                    message: "upload_id is \(single.typeDescription), not a string"
                )
            }
            return [try uploadID(text, field: "upload_id")]
        case (.some(let list), nil):
            guard case .array(let elements) = list else {
                throw InvalidRequest(
                    code: .invalidRequest,
                    message: "upload_ids is \(list.typeDescription), not an array of strings"
                )
            }
            guard !elements.isEmpty else {
                throw InvalidRequest(
                    code: .invalidRequest, message: "upload_ids is empty; give 1 to \(maxUploadIDs) ids")
            }
            guard elements.count <= maxUploadIDs else {
                throw InvalidRequest(
                    code: .tooManyUploadIDs,
                    message: "upload_ids has \(elements.count) elements; at most \(maxUploadIDs) are accepted"
                )
            }
            var ids: [UploadID] = []
            ids.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                guard case .string(let text) = element else {
                    throw InvalidRequest(
                        code: .invalidRequest,
                        message: "upload_ids[\(index)] is \(element.typeDescription), not a string"
                    )
                }
                ids.append(try uploadID(text, field: "upload_ids[\(index)]"))
            }
            return ids
        }
    }

    /// `field` is only built for the error message (an interpolated name per id cost more than validating it).
    private static func uploadID(_ text: String, field: @autoclosure () -> String) throws(InvalidRequest) -> UploadID {
        guard let id = UploadID(validating: text) else {
            throw InvalidRequest(
                code: .invalidUploadID,
                message: "\(field()) \(quoted(text)) is not a DatoCMS upload id "
                    + "(22 URL-safe base64 characters or 1 to 15 digits)"
            )
        }
        return id
    }

    private static func decodeRequestID(_ value: JSONValue?) throws(InvalidRequest) -> String? {
        guard let value else { return nil }
        guard case .string(let text) = value else {
            throw InvalidRequest(code: .invalidRequest, message: "request_id is \(value.typeDescription), not a string")
        }
        guard !text.isEmpty else {
            throw InvalidRequest(code: .invalidRequest, message: "request_id is empty; omit it to use the default")
        }
        guard text.count <= maxRequestIDLength else {
            throw InvalidRequest(
                code: .invalidRequest,
                message: "request_id has \(text.count) characters; at most \(maxRequestIDLength) are accepted"
            )
        }
        return text
    }

    private static func decodeEnvironment(_ value: JSONValue?) throws(InvalidRequest) -> String? {
        guard let value else { return nil }
        guard case .string(let text) = value else {
            throw InvalidRequest(
                code: .invalidRequest, message: "environment is \(value.typeDescription), not a string")
        }
        guard isEnvironmentName(text) else {
            throw InvalidRequest(
                code: .invalidRequest,
                message: "environment \(quoted(text)) is not a DatoCMS environment name "
                    + "(1 to 100 letters, digits, \"-\" or \"_\")"
            )
        }
        return text
    }

    private static func decodeRequestedAt(_ value: JSONValue?) throws(InvalidRequest) -> Date? {
        guard let value else { return nil }
        guard case .string(let text) = value else {
            throw InvalidRequest(
                code: .invalidRequest, message: "requested_at is \(value.typeDescription), not a string")
        }
        guard let date = RFC3339.parse(text) else {
            throw InvalidRequest(
                code: .invalidRequest,
                message: "requested_at \(quoted(text)) is not an RFC 3339 time such as \"2026-11-28T10:00:00Z\""
            )
        }
        return date
    }

    // MARK: - Helpers

    /// Environment names travel in the `X-Environment` header, so only header-safe names are accepted.
    static func isEnvironmentName(_ text: String) -> Bool {
        let bytes = text.utf8
        return (1...100).contains(bytes.count)
            && bytes.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default:
                    false
                }
            }
    }

    /// Quotes untrusted text for a message: escaped, and cut after 40 characters so a dead-letter header stays small.
    private static func quoted(_ text: String) -> String {
        text.count > 40 ? String(String(text.prefix(40)).debugDescription.dropLast()) + "…\"" : text.debugDescription
    }
}
