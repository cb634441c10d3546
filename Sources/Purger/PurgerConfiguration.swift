public import DatoCMS
public import Foundation
public import Logging

/// Every setting of the worker (CONTRACT §4), validated once at start-up.
///
/// Made by ``load(environment:flags:readFile:)``, which applies defaults, lets flags win over environment
/// variables, and refuses any invalid value with a ``ConfigurationError`` naming the setting. Settings that only
/// `run` needs (the broker list and the API token) may be absent; ``requireForRun()`` insists on them.
public struct PurgerConfiguration: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The broker list (`KAFKA_BOOTSTRAP_SERVERS`); required for `run`.
    public var kafkaBootstrapServers: String?
    /// The consumer group (`KAFKA_GROUP_ID`).
    public var kafkaGroupID: String
    /// librdkafka properties from `KAFKA_<PROPERTY>` variables, keyed by property name (`security.protocol`).
    public var kafkaProperties: [String: String]
    /// The topic deletion requests are consumed from.
    public var requestsTopic: String
    /// The topic completion events are published to.
    public var resultsTopic: String
    /// The dead-letter topic.
    public var dlqTopic: String
    /// The CMA token, from `DATOCMS_API_TOKEN` or the file named by `DATOCMS_API_TOKEN_FILE`; required for `run`.
    public var apiToken: APIToken?
    /// The CMA base URL, http or https, without a trailing slash.
    public var datocmsBaseURL: URL
    /// The environment of requests that name none; `nil` for the primary environment.
    public var datocmsEnvironment: String?
    /// The request budget of the API token.
    public var rateLimit: RateLimit
    /// Whether job results are pushed (DatoCMS's real-time events) or polled.
    public var jobResults: JobResultSource
    /// The Pusher websocket host (`wss://`, or `ws://` on a loopback address).
    public var pushURL: URL
    /// DatoCMS's Pusher application key.
    public var pushKey: String
    /// The most ids per bulk operation, 1 to 200.
    public var batchMaxSize: Int
    /// The longest an id waits for its batch to fill.
    public var batchMaxWait: Duration
    /// The most jobs submitted and not finished at once: adapted (`auto`), or fixed.
    public var maxInFlightJobs: InFlightBound
    /// How long the worker waits for a job result before reporting `timed_out`.
    public var jobTimeout: Duration
    /// The most upload ids confirmed gone that are remembered; `0` remembers none.
    public var goneCacheSize: Int
    /// How long an id confirmed gone is answered `not_found` without asking the API again.
    public var goneCacheTTL: Duration
    /// The drain budget on SIGTERM/SIGINT.
    public var shutdownTimeout: Duration
    /// The port of `/metrics`, `/healthz` and `/readyz`; `0` disables the HTTP server.
    public var httpPort: Int
    /// The lowest level logged.
    public var logLevel: Logger.Level
    /// How log lines are written.
    public var logFormat: LogFormat

    /// Reads the configuration from environment variables and command-line flags.
    ///
    /// - Parameters:
    ///   - environment: the process environment.
    ///   - flags: flag values keyed by flag name without dashes (`batch-max-size`); a flag wins over its variable.
    ///   - readFile: returns the contents of the file at a path; used only for `DATOCMS_API_TOKEN_FILE`.
    /// - Throws: ``ConfigurationError`` for the first invalid setting or unknown flag. Values are trimmed of
    ///   surrounding whitespace, and an empty value counts as unset.
    public static func load(
        environment: [String: String],
        flags: [String: String] = [:],
        readFile: (String) throws -> String = { _ in
            throw CocoaError(.fileReadUnknown)
        }
    ) throws(ConfigurationError) -> PurgerConfiguration {
        try loadWithNotices(environment: environment, flags: flags, readFile: readFile).configuration
    }

    /// Reads the configuration like ``load(environment:flags:readFile:)``, and says what in the environment it
    /// ignored: Kubernetes service-link variables, and `PURGER_*` or `DATOCMS_*` variables that are no setting.
    ///
    /// Loading does no I/O beyond `readFile` and logs nothing; the caller logs the notices once logging is set up.
    public static func loadWithNotices(
        environment: [String: String],
        flags: [String: String] = [:],
        readFile: (String) throws -> String = { _ in
            throw CocoaError(.fileReadUnknown)
        }
    ) throws(ConfigurationError) -> (configuration: PurgerConfiguration, notices: [ConfigurationNotice]) {
        let values = try SettingValues(environment: environment, flags: flags)
        let scanned = try scan(environment)
        typealias S = SettingDeclarations
        let configuration = PurgerConfiguration(
            kafkaBootstrapServers: try S.kafkaBootstrapServers.value(in: values),
            kafkaGroupID: try S.kafkaGroupID.value(in: values),
            kafkaProperties: scanned.kafkaProperties,
            requestsTopic: try S.requestsTopic.value(in: values),
            resultsTopic: try S.resultsTopic.value(in: values),
            dlqTopic: try S.dlqTopic.value(in: values),
            apiToken: try apiToken(values, readFile: readFile),
            datocmsBaseURL: try S.baseURL.value(in: values),
            datocmsEnvironment: try S.environment.value(in: values),
            rateLimit: try S.rateLimit.value(in: values),
            jobResults: try S.jobResults.value(in: values),
            pushURL: try S.pushURL.value(in: values),
            pushKey: try S.pushKey.value(in: values),
            batchMaxSize: try S.batchMaxSize.value(in: values),
            batchMaxWait: try S.batchMaxWait.value(in: values),
            maxInFlightJobs: try S.maxInFlightJobs.value(in: values),
            jobTimeout: try S.jobTimeout.value(in: values),
            goneCacheSize: try S.goneCacheSize.value(in: values),
            goneCacheTTL: try S.goneCacheTTL.value(in: values),
            shutdownTimeout: try S.shutdownTimeout.value(in: values),
            httpPort: try S.httpPort.value(in: values),
            logLevel: try S.logLevel.value(in: values),
            logFormat: try S.logFormat.value(in: values)
        )
        return (configuration, scanned.notices)
    }

    /// The settings `run` needs beyond the defaults, or a ``ConfigurationError`` naming the first one missing.
    public func requireForRun() throws(ConfigurationError) -> (kafkaBootstrapServers: String, apiToken: APIToken) {
        guard let kafkaBootstrapServers else {
            throw ConfigurationError(setting: "KAFKA_BOOTSTRAP_SERVERS", message: "is required for run")
        }
        guard let apiToken else {
            throw ConfigurationError(
                setting: "DATOCMS_API_TOKEN",
                message: "is required for run (or DATOCMS_API_TOKEN_FILE naming a file that holds it)"
            )
        }
        return (kafkaBootstrapServers, apiToken)
    }

    /// Every setting as `NAME=value`, one per line, in table order; the API token and secret-looking librdkafka
    /// properties (passwords, secrets, keys in PEM) print as `<redacted>`.
    public var description: String {
        SettingDeclarations.rows.flatMap { $0.lines(self) }.joined(separator: "\n")
    }

    /// The same as ``description``: secrets stay redacted in debug output too.
    public var debugDescription: String { description }

    /// Reflects only the redacted ``description``, so `dump` cannot reveal the token or secret Kafka properties.
    public var customMirror: Mirror { Mirror(self, children: ["settings": description], displayStyle: .struct) }

    /// Whether a librdkafka property holds a secret and must not be printed.
    static func isSecret(property: String) -> Bool {
        ["password", "passphrase", "secret", "pem", "sasl.oauthbearer.config", "sasl.jaas"].contains {
            property.contains($0)
        }
    }
}

/// `PURGER_MAX_IN_FLIGHT_JOBS`: how many jobs may be submitted and not finished at once.
public enum InFlightBound: Sendable, Equatable {
    /// Adapted to what the API and the token's budget serve (``InFlightLimiter``), from 16 up to
    /// ``InFlightBound/autoMaximum``.
    case auto
    /// Exactly this many at most.
    case fixed(Int)

    /// The most jobs `auto` ever allows: a memory bound (a job in flight holds its batch, at most 200 ids).
    public static let autoMaximum = 256
    /// Where `auto` starts: the fixed default before `auto`.
    public static let autoInitial = 16
}
