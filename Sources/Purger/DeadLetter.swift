/// The reason headers of a message sent to the dead-letter topic (CONTRACT §5).
///
/// The dead letter itself carries the original key and value byte for byte; this type only describes why it was
/// sent and where it came from.
public struct DeadLetter: Hashable, Sendable {
    /// Header naming the ``code``.
    public static let codeHeader = "purger.error.code"
    /// Header carrying the ``message``.
    public static let messageHeader = "purger.error.message"
    /// Header naming the source topic.
    public static let topicHeader = "purger.source.topic"
    /// Header naming the source partition, in decimal.
    public static let partitionHeader = "purger.source.partition"
    /// Header naming the source offset, in decimal.
    public static let offsetHeader = "purger.source.offset"

    /// Why the message is dead-lettered.
    public var code: DeadLetterCode
    /// What exactly went wrong.
    public var message: String
    /// The message being dead-lettered.
    public var source: SourcePosition

    /// A dead letter for the message at `source`, with reason `code` explained by `message`.
    public init(code: DeadLetterCode, message: String, source: SourcePosition) {
        self.code = code
        self.message = message
        self.source = source
    }

    /// A dead letter for a request refused by ``DeletionRequest/decode(value:source:)``.
    public init(_ invalid: InvalidRequest, source: SourcePosition) {
        self.init(code: DeadLetterCode(invalid.code), message: invalid.message, source: source)
    }

    /// A dead letter for a request whose ids were in batch `batch`, for which no job result came within `timeout`;
    /// the request is sent for replay.
    public static func jobTimeout(batch: BatchID, jobID: String?, timeout: Duration, source: SourcePosition) -> Self {
        let job = jobID.map { "job \($0)" } ?? "the job"
        return DeadLetter(
            code: .jobTimeout,
            message: "\(job) of batch \(batch) had no result within \(timeout.components.seconds)s",
            source: source
        )
    }

    /// The five headers in contract order, each value UTF-8 encoded.
    public var headers: [(key: String, value: [UInt8])] {
        [
            (Self.codeHeader, Array(code.rawValue.utf8)),
            (Self.messageHeader, Array(message.utf8)),
            (Self.topicHeader, Array(source.topic.utf8)),
            (Self.partitionHeader, Array(String(source.partition).utf8)),
            (Self.offsetHeader, Array(String(source.offset).utf8)),
        ]
    }

    /// The headers for dead-lettering the request at `source` refused as `invalid`.
    public static func headers(for invalid: InvalidRequest, source: SourcePosition) -> [(key: String, value: [UInt8])] {
        DeadLetter(invalid, source: source).headers
    }
}

/// The `purger.error.code` values: every ``InvalidRequestCode`` plus the faults found after a request was accepted.
public enum DeadLetterCode: String, Hashable, Sendable, CaseIterable {
    /// See ``InvalidRequestCode/invalidJSON``.
    case invalidJSON = "invalid_json"
    /// See ``InvalidRequestCode/invalidRequest``.
    case invalidRequest = "invalid_request"
    /// See ``InvalidRequestCode/invalidUploadID``.
    case invalidUploadID = "invalid_upload_id"
    /// See ``InvalidRequestCode/tooManyUploadIDs``.
    case tooManyUploadIDs = "too_many_upload_ids"
    /// See ``InvalidRequestCode/payloadTooLarge``.
    case payloadTooLarge = "payload_too_large"
    /// A batch carrying the request's ids got no job result within the job timeout (status `timed_out`).
    case jobTimeout = "job_timeout"

    /// The dead-letter code of an invalid request; the two share their raw values.
    public init(_ code: InvalidRequestCode) {
        switch code {
        case .invalidJSON: self = .invalidJSON
        case .invalidRequest: self = .invalidRequest
        case .invalidUploadID: self = .invalidUploadID
        case .tooManyUploadIDs: self = .tooManyUploadIDs
        case .payloadTooLarge: self = .payloadTooLarge
        }
    }
}
