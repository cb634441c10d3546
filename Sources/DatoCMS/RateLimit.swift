/// A request budget: at most `requests` requests in any `window`.
///
/// DatoCMS allows 60 requests per 3 seconds per token by default; plans differ.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Requests allowed per window; at least 1.
    public var requests: Int
    /// Length of the sliding window; positive.
    public var window: Duration

    /// DatoCMS's default budget: 60 requests per 3 seconds.
    public static let datoCMSDefault = RateLimit(requests: 60, window: .seconds(3))

    /// A budget of `requests` per `window`. Values are clamped to at least 1 request and 1 millisecond.
    public init(requests: Int, window: Duration) {
        self.requests = max(1, requests)
        self.window = max(window, .milliseconds(1))
    }

    /// Parses `"<requests>/<window>"` where the window is a number with the unit `ms`, `s` or `m`
    /// (`"60/3s"`, `"30/1s"`, `"100/500ms"`). Returns `nil` for anything else, zero or negative values included.
    public init?(parsing text: String) {
        let parts = text.trimmingWhitespace().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let requests = Int(parts[0]), requests >= 1 else { return nil }
        let windowText = parts[1]
        let digits = windowText.prefix { ("0"..."9").contains($0) }
        let unit = windowText.dropFirst(digits.count)
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

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var slice = self[...]
        while slice.first?.isWhitespace == true { slice.removeFirst() }
        while slice.last?.isWhitespace == true { slice.removeLast() }
        return slice
    }
}
