/// Why a deletion request was refused; the refused message goes to the dead-letter topic with this reason.
public struct InvalidRequest: Error, Hashable, Sendable, CustomStringConvertible {
    /// The class of the fault, written to the `purger.error.code` header.
    public var code: InvalidRequestCode
    /// What exactly is wrong, for a human reading the dead letter (`purger.error.message`).
    public var message: String

    /// A refusal of class `code`, explained by `message`.
    public init(code: InvalidRequestCode, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The classes of invalid requests, with the codes CONTRACT §5 names for them.
public enum InvalidRequestCode: String, Hashable, Sendable, CaseIterable {
    /// The value is not UTF-8, not JSON, or not a JSON object.
    case invalidJSON = "invalid_json"
    /// A field has the wrong type or value, no ids are given, or the message has no value at all.
    case invalidRequest = "invalid_request"
    /// An element of `upload_ids`, or `upload_id`, is not a DatoCMS upload id.
    case invalidUploadID = "invalid_upload_id"
    /// `upload_ids` holds more than ``DeletionRequest/maxUploadIDs`` elements.
    case tooManyUploadIDs = "too_many_upload_ids"
    /// The value is larger than ``DeletionRequest/maxPayloadBytes``.
    case payloadTooLarge = "payload_too_large"
}
