/// A DatoCMS Content Management API token.
///
/// The secret is only ever read to build the `Authorization` header: `description`, `debugDescription` and
/// reflection all print `<redacted>`, so a token interpolated into a log line or an error leaks nothing.
public struct APIToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The token itself: only the HTTP layer and tests read it; it is never logged or printed.
    public let secret: String

    /// Wraps a token read from configuration.
    public init(_ secret: String) {
        self.secret = secret
    }

    /// Always `<redacted>`.
    public var description: String { "<redacted>" }
    /// Always `<redacted>`.
    public var debugDescription: String { "<redacted>" }
    /// Shows no children, so `dump` and `Mirror` cannot reveal the secret.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// The value of the `Authorization` header.
    var authorizationHeaderValue: String { "Bearer \(secret)" }
}
