/// A missing or invalid setting; `run` stops before connecting, with exit code 2 and ``description`` as its one line.
///
/// Never carries a secret: messages about the API token say what is wrong, not what it is.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where the bad value came from: the environment variable (`PURGER_BATCH_MAX_SIZE`), or the flag
    /// (`--batch-max-size`) when a flag gave it.
    public let setting: String
    /// What is wrong, e.g. `must be an integer from 1 to 200, got "500"`.
    public let message: String

    /// An error about `setting`.
    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    /// `<setting>: <message>`, on one line.
    public var description: String { "\(setting): \(message)" }
}
