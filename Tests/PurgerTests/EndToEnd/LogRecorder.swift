import Logging
import Synchronization

/// Keeps every line logged through its loggers in memory, rendered with level, label, message, metadata and
/// error, so that tests can search them. Used instead of bootstrapping the global logging system.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    /// Every line recorded so far, in order.
    var recorded: [String] { lines.withLock { $0 } }

    /// A logger that records into this recorder at `level` and above.
    func logger(label: String = "e2e", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { label in RecordingLogHandler(label: label, recorder: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func record(_ line: String) {
        lines.withLock { $0.append(line) }
    }
}

private struct RecordingLogHandler: LogHandler {
    let label: String
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let metadata = event.metadata { merged.merge(metadata) { $1 } }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let error = event.error.map { " error=\(String(reflecting: $0))" } ?? ""
        recorder.record("\(event.level) \(label) \(event.message) \(rendered)\(error)")
    }
}
