public import Logging
public import Purger

extension LoggingSystem {
    /// Sends logs to standard error as JSON lines, or as readable text, at `level`.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        bootstrap { label in
            var handler: any LogHandler =
                switch format {
                case .json: JSONLogHandler(label: label)
                case .text: StreamLogHandler.standardError(label: label)
                }
            handler.logLevel = level
            return handler
        }
    }
}
