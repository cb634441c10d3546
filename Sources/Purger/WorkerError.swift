public import DatoCMS
public import Kafka

/// Why the worker stopped with an error.
public enum WorkerError: Error, Sendable, CustomStringConvertible {
    /// The API refused the token (401/403).
    case tokenRejected(CMAError)
    /// Kafka failed in a way the worker cannot work around (a fatal client error, an undeliverable result).
    case kafka(KafkaError)
    /// The worker's own bookkeeping disagreed with itself; a bug.
    case internalInconsistency(String)
    /// `DATOCMS_JOB_RESULTS=push` and the job-result channel could not be subscribed at start-up.
    case pushUnavailable(String)

    public var description: String {
        switch self {
        case .tokenRejected(let error): "the DatoCMS API rejected the token: \(error)"
        case .kafka(let error): "Kafka failed: \(error)"
        case .internalInconsistency(let message): "internal inconsistency: \(message)"
        case .pushUnavailable(let channel):
            "DATOCMS_JOB_RESULTS=push and the job results of \(channel) could not be subscribed to"
        }
    }
}
