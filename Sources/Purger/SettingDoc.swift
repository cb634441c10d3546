/// One row of the configuration reference: what `--help` and the README print about a setting.
public struct SettingDoc: Hashable, Sendable {
    /// The environment variable, e.g. `PURGER_BATCH_MAX_SIZE`.
    public let environmentName: String
    /// The command-line flag without dashes, e.g. `batch-max-size`; `nil` when the setting has none.
    public let flagName: String?
    /// The default, as text for people (`200`, `(required for run)`).
    public let defaultText: String
    /// What the setting does and which values it takes.
    public let meaning: String

    /// A row for `environmentName`, with flag `flagName`.
    public init(environmentName: String, flagName: String?, defaultText: String, meaning: String) {
        self.environmentName = environmentName
        self.flagName = flagName
        self.defaultText = defaultText
        self.meaning = meaning
    }
}
