/// One row of the configuration reference: what `--help`, `--print-settings` and the README print about a setting.
///
/// Rows are made from the declarations in ``PurgerConfiguration/settings``; texts may hold Markdown code spans
/// (`` `json` ``), which plain-text renderings drop the backticks of.
public struct SettingDoc: Hashable, Sendable {
    /// The environment variable, e.g. `PURGER_BATCH_MAX_SIZE`.
    public let environmentName: String
    /// The command-line flag without dashes, e.g. `batch-max-size`; `nil` when the setting has none.
    public let flagName: String?
    /// The default: a literal value (`200`), or prose in parentheses when there is none (`(required for run)`).
    public let defaultText: String
    /// What the setting does and which values it takes, on one line.
    public let meaning: String
    /// Whether the value is a secret, never printed, logged or put into events or metrics.
    public let isSecret: Bool

    /// A row for `environmentName`, with flag `flagName`.
    public init(
        environmentName: String, flagName: String?, defaultText: String, meaning: String, isSecret: Bool = false
    ) {
        self.environmentName = environmentName
        self.flagName = flagName
        self.defaultText = defaultText
        self.meaning = meaning
        self.isSecret = isSecret
    }

    /// Whether ``defaultText`` is a literal value rather than prose about the absence of one.
    public var defaultIsLiteral: Bool { !defaultText.isEmpty && !defaultText.hasPrefix("(") }
}
