/// The DatoCMS API token: a secret that prints, dumps and logs as `<redacted>`.
///
/// Only ``secret`` reveals the value, for the `Authorization` header and nothing else.
public struct APIToken: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The token itself. Never print, log or publish it.
    public let secret: String

    /// Wraps `secret`.
    public init(_ secret: String) {
        self.secret = secret
    }

    /// Always `<redacted>`.
    public var description: String { "<redacted>" }
    /// Always `<redacted>`.
    public var debugDescription: String { "<redacted>" }
    /// Shows no children, so `dump` and reflection do not reveal the secret.
    public var customMirror: Mirror { Mirror(self, children: [Mirror.Child](), displayStyle: .struct) }
}
