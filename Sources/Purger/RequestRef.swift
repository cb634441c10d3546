/// A deletion request as a batch remembers it: the id the producer gave it and the message it came from.
///
/// Completion events list these so a consumer of the results topic can relate each batch back to the requests
/// whose ids it carried.
public struct RequestRef: Hashable, Sendable, CustomStringConvertible {
    /// The request's `request_id`, or `<topic>/<partition>/<offset>` when the producer gave none.
    public var requestID: String
    /// The Kafka message the request was consumed from.
    public var source: SourcePosition

    /// Refers to the request `requestID` consumed at `source`.
    public init(requestID: String, source: SourcePosition) {
        self.requestID = requestID
        self.source = source
    }

    public var description: String { "\(requestID)@\(source)" }
}
