/// The request budget of the API token: at most ``requests`` requests in any ``window``, written `60/3s`.
public struct RateLimitSetting: Hashable, Sendable, CustomStringConvertible {
    /// How many requests the window allows (at least 1).
    public let requests: Int
    /// The length of the window (positive).
    public let window: Duration

    /// A budget of `requests` per `window`.
    ///
    /// - Precondition: `requests` is at least 1 and `window` is positive.
    public init(requests: Int, window: Duration) {
        precondition(requests >= 1, "a rate limit allows at least one request")
        precondition(window > .zero, "a rate limit window is positive")
        self.requests = requests
        self.window = window
    }

    /// Reads `<requests>/<length><unit>` with unit `ms`, `s` or `m` (`60/3s`, `10/500ms`, `1000/1m`); the length
    /// may be left out to mean 1 (`60/s`). Returns `nil` for anything else.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let requests = Int(parts[0]), requests >= 1 else {
            return nil
        }
        let window = parts[1]
        let digits = window.prefix { ("0"..."9").contains($0) }
        let unit = window.dropFirst(digits.count)
        guard digits.count <= 9, let length = digits.isEmpty ? 1 : Int(digits), length >= 1 else { return nil }
        switch unit {
        case "ms": self.init(requests: requests, window: .milliseconds(length))
        case "s": self.init(requests: requests, window: .seconds(length))
        case "m": self.init(requests: requests, window: .seconds(length * 60))
        default: return nil
        }
    }

    /// The `<requests>/<length><unit>` form, in the largest unit that divides the window.
    public var description: String {
        let milliseconds = window.components.seconds * 1000 + window.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 60_000 == 0 { return "\(requests)/\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(requests)/\(milliseconds / 1000)s" }
        return "\(requests)/\(milliseconds)ms"
    }
}
