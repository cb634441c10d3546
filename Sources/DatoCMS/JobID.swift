/// The id of an asynchronous DatoCMS job, as returned by `POST /uploads/bulk/destroy` (`{"data":{"type":"job","id":…}}`).
public struct JobID: Hashable, Sendable, CustomStringConvertible {
    /// The id exactly as the API wrote it.
    public let rawValue: String

    /// Wraps an id received from the API.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
