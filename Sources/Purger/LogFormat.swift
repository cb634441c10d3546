/// How log lines are written.
public enum LogFormat: String, Hashable, Sendable, CaseIterable {
    /// One JSON object per line, for log collectors.
    case json
    /// Human-readable lines, for terminals.
    case text
}
