public import DatoCMS
public import Foundation

/// A valid request to delete uploads, decoded from one Kafka message (CONTRACT §2).
///
/// A value of this type always holds 1 to ``maxUploadIDs`` distinct, well-formed upload ids; the only way to
/// make one from a message is ``decode(value:source:)``.
public struct DeletionRequest: Hashable, Sendable {
    /// Values larger than this many bytes (1 MiB) are refused with `payload_too_large`.
    public static let maxPayloadBytes = 1_048_576
    /// Requests listing more ids than this are refused with `too_many_upload_ids`.
    public static let maxUploadIDs = 1000
    /// `request_id` may be at most this many characters long.
    public static let maxRequestIDLength = 200

    /// The producer's `request_id`, or `<topic>/<partition>/<offset>` of ``source`` when it gave none.
    public let requestID: String
    /// The ids to delete: distinct, in the order they first appear in the message.
    ///
    /// An id listed twice in one request is deleted once; the duplicate is not an error, because deleting an
    /// upload twice and deleting it once have the same intended effect.
    public let uploadIDs: [UploadID]
    /// The DatoCMS environment named by the request, or `nil` when it named none (the worker's default applies).
    public let environment: String?
    /// When the producer says it made the request, for end-to-end latency.
    public let requestedAt: Date?
    /// The message the request was consumed from.
    public let source: SourcePosition

    /// Assembles a request from already validated parts; duplicates in `uploadIDs` are dropped, keeping the first.
    ///
    /// - Precondition: `uploadIDs` is not empty and holds at most ``maxUploadIDs`` ids.
    public init(
        requestID: String? = nil,
        uploadIDs: [UploadID],
        environment: String? = nil,
        requestedAt: Date? = nil,
        source: SourcePosition
    ) {
        precondition(!uploadIDs.isEmpty, "a deletion request carries at least one upload id")
        precondition(uploadIDs.count <= Self.maxUploadIDs, "a deletion request carries at most 1000 upload ids")
        var seen = Set<UploadID>()
        self.uploadIDs = uploadIDs.filter { seen.insert($0).inserted }
        self.requestID = requestID ?? source.description
        self.environment = environment
        self.requestedAt = requestedAt
        self.source = source
    }

    /// The request as batches and completion events refer to it.
    public var ref: RequestRef { RequestRef(requestID: requestID, source: source) }
}
