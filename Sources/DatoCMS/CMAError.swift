/// An error from the Content Management API, classified by what the caller should do about it.
public struct CMAError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is; drives retries, rejection and exit codes.
    public enum Kind: Sendable, Equatable {
        /// The token was rejected (401/403): nothing will work until the configuration changes.
        case fatal
        /// The API refused the request for good (a non-retryable 4xx); `code` says why.
        case rejected
        /// A 5xx, 429, transient API error, timeout or network error that persisted until the retry deadline.
        case retryable
    }

    /// The class of the failure.
    public var kind: Kind
    /// The HTTP status of the last response, `nil` for network errors.
    public var httpStatus: Int?
    /// The API error code, e.g. `INVALID_FIELD`, when the response carried a CMA error document.
    public var code: String?
    /// A short human-readable explanation; never contains the API token.
    public var message: String

    /// Creates an error.
    public init(kind: Kind, httpStatus: Int? = nil, code: String? = nil, message: String) {
        self.kind = kind
        self.httpStatus = httpStatus
        self.code = code
        self.message = message
    }

    /// `CODE: message` when a code is known, else `HTTP <status>: message` or just the message.
    public var description: String {
        if let code { return "\(code): \(message)" }
        if let httpStatus { return "HTTP \(httpStatus): \(message)" }
        return message
    }
}
