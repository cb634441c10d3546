import DatoCMS
import Foundation
import Logging

/// The declaration of every setting (CONTRACT §4), each exactly once: loading, `run --help`, the redacted
/// ``PurgerConfiguration/description`` and the README's table all come from here.
enum SettingDeclarations {
    static let kafkaBootstrapServers = Setting(
        "KAFKA_BOOTSTRAP_SERVERS", \.kafkaBootstrapServers, default: .absent("(required for `run`)", value: nil),
        SettingParser<String>.text.optional(), "broker list, `host:port[,host:port…]`")
    static let kafkaGroupID = Setting(
        "KAFKA_GROUP_ID", \.kafkaGroupID, default: .literal("upload-purger"), .text, "consumer group")
    static let requestsTopic = Setting(
        "PURGER_REQUESTS_TOPIC", \.requestsTopic, default: .literal("upload-deletion-requests"), .text,
        "input topic")
    static let resultsTopic = Setting(
        "PURGER_RESULTS_TOPIC", \.resultsTopic, default: .literal("upload-deletion-results"), .text,
        "completion events")
    static let dlqTopic = Setting(
        "PURGER_DLQ_TOPIC", \.dlqTopic, default: .literal("upload-deletion-requests.dlq"), .text, "dead letters")
    // Loaded together with the token file by `apiToken(_:readFile:)`: the two are one choice.
    static let apiToken = Setting(
        "DATOCMS_API_TOKEN", \.apiToken, default: .absent("(this or the file, required for `run`)", value: nil),
        SettingParser<APIToken>(
            expectation: "a token", values: nil, parse: { APIToken($0) }, format: { $0.description }
        )
        .optional(), secret: true, "CMA token")
    static let apiTokenFile = "DATOCMS_API_TOKEN_FILE"
    static let baseURL = Setting(
        "DATOCMS_BASE_URL", \.datocmsBaseURL, default: .literal("https://site-api.datocms.com"), .baseURL,
        "CMA base URL (http or https)")
    static let environment = Setting(
        "DATOCMS_ENVIRONMENT", \.datocmsEnvironment, default: .absent("(primary)", value: nil),
        SettingParser<String>.environmentName.optional(unset: "<primary>"), "environment of requests that name none")
    static let rateLimit = Setting(
        "DATOCMS_RATE_LIMIT", \.rateLimit, default: .literal("60/3s"), .rateLimit,
        "request budget of the API token, shared by all requests of all replicas")
    static let jobResults = Setting(
        "DATOCMS_JOB_RESULTS", \.jobResults, default: .literal("auto"), SettingParser<JobResultSource>.choice,
        "how job results are learned: `auto` subscribes to DatoCMS's real-time job results (Pusher) at start-up and "
            + "polls when that fails; `push` refuses to start without them; `poll` only polls. With push a job costs "
            + "one request instead of two or more; a job whose pushed result is late is still polled")
    static let pushURL = Setting(
        "DATOCMS_PUSH_URL", \.pushURL, default: .literal(JobResultSource.datoCMSPushURL), .pushURL,
        "the Pusher websocket host of pushed job results; the API token is never sent there")
    static let pushKey = Setting(
        "DATOCMS_PUSH_KEY", \.pushKey, default: .literal(JobResultSource.datoCMSPushKey), .text,
        "DatoCMS's Pusher application key")
    static let batchMaxSize = Setting(
        "PURGER_BATCH_MAX_SIZE", \.batchMaxSize, default: .literal("200"), .integer(1...200),
        "ids per bulk operation")
    static let batchMaxWait = Setting(
        "PURGER_BATCH_MAX_WAIT_MS", \.batchMaxWait, default: .literal("2000"), .milliseconds(1...3_600_000),
        "longest time an id waits for its batch to fill")
    static let maxInFlightJobs = Setting(
        "PURGER_MAX_IN_FLIGHT_JOBS", \.maxInFlightJobs, default: .literal("auto"), .inFlightBound(1...10_000),
        "the most jobs submitted and not completed at once (a hard bound); `auto` adapts it to what the API and "
            + "the token's budget serve (from 16, at most 256); a number fixes it; while full batches for half "
            + "the bound wait for free slots the worker pauses its partitions")
    static let jobTimeout = Setting(
        "PURGER_JOB_TIMEOUT_S", \.jobTimeout, default: .literal("600"), .seconds(1...604_800),
        "give up on a job result after this long, reporting `timed_out`")
    static let goneCacheSize = Setting(
        "PURGER_GONE_CACHE_SIZE", \.goneCacheSize, default: .literal("10000"), .integer(0...10_000_000),
        "upload ids confirmed gone that are remembered (about 350 bytes each), so that a repeated request for one is "
            + "reported `not_found` without an API request; `0` turns this off")
    static let goneCacheTTL = Setting(
        "PURGER_GONE_CACHE_TTL_S", \.goneCacheTTL, default: .literal("600"), .seconds(1...86_400),
        "how long an id confirmed gone is remembered; an upload re-created with the same id within this window "
            + "would be skipped")
    static let shutdownTimeout = Setting(
        "PURGER_SHUTDOWN_TIMEOUT_S", \.shutdownTimeout, default: .literal("30"), .seconds(1...86_400),
        "drain budget on SIGTERM/SIGINT and on partition revocation")
    static let httpPort = Setting(
        "PURGER_HTTP_PORT", \.httpPort, default: .literal("9464"), .integer(0...65_535),
        "`/metrics`, `/healthz`, `/readyz`; `0` disables")
    static let logLevel = Setting(
        "PURGER_LOG_LEVEL", \.logLevel, default: .literal("info"), SettingParser<Logger.Level>.choice,
        "lowest level logged")
    static let logFormat = Setting(
        "PURGER_LOG_FORMAT", \.logFormat, default: .literal("json"), SettingParser<LogFormat>.choice,
        "how log lines are written: one JSON object each, or readable text")

    /// Every setting in contract order: the reference and ``PurgerConfiguration/description`` follow it.
    static let rows: [SettingRow] = [
        kafkaBootstrapServers.row,
        kafkaGroupID.row,
        SettingRow(
            doc: SettingDoc(
                environmentName: "KAFKA_<PROPERTY>", flagName: nil, defaultText: "",
                meaning: "any librdkafka property: lower-cased, `_` becomes `.` "
                    + "(`KAFKA_SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`); "
                    + "Kubernetes service-link variables are not passed"),
            lines: { configuration in
                configuration.kafkaProperties.sorted(by: { $0.key < $1.key }).map { property, value in
                    let shown = PurgerConfiguration.isSecret(property: property) ? "<redacted>" : value
                    return "\(PurgerConfiguration.variableName(ofKafkaProperty: property))=\(shown)"
                }
            }),
        requestsTopic.row,
        resultsTopic.row,
        dlqTopic.row,
        apiToken.row,
        SettingRow(
            doc: SettingDoc(
                environmentName: apiTokenFile, flagName: PurgerConfiguration.flagName(of: apiTokenFile),
                defaultText: "", meaning: "file holding the CMA token (trailing newlines ignored)"),
            lines: { _ in [] }),
        baseURL.row,
        environment.row,
        rateLimit.row,
        jobResults.row,
        pushURL.row,
        pushKey.row,
        batchMaxSize.row,
        batchMaxWait.row,
        maxInFlightJobs.row,
        jobTimeout.row,
        goneCacheSize.row,
        goneCacheTTL.row,
        shutdownTimeout.row,
        httpPort.row,
        logLevel.row,
        logFormat.row,
    ]

    /// The variables that are settings; any other `PURGER_*` or `DATOCMS_*` variable is a mistake.
    static let environmentNames: Set<String> = Set(orderedEnvironmentNames)

    /// The variables that are settings, in contract order, so that ties between suggestions go the same way.
    static let orderedEnvironmentNames: [String] = rows.filter { $0.doc.flagName != nil }.map(\.doc.environmentName)
}

extension PurgerConfiguration {
    /// The configuration reference (CONTRACT §4), in contract order, for `--help`, `--print-settings` and the
    /// README.
    ///
    /// Every row with a flag name is accepted by ``load(environment:flags:readFile:)`` as a flag; the
    /// `KAFKA_<PROPERTY>` row describes the librdkafka passthrough, which has no flag.
    public static let settings: [SettingDoc] = SettingDeclarations.rows.map(\.doc)

    /// The flag name of a setting: the variable without a `PURGER_` prefix, lower-cased, `_` as `-`.
    static func flagName(of environmentName: String) -> String {
        let name = environmentName.hasPrefix("PURGER_") ? String(environmentName.dropFirst(7)) : environmentName
        return name.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// The `KAFKA_*` variable that sets a librdkafka property.
    static func variableName(ofKafkaProperty property: String) -> String {
        "KAFKA_" + property.uppercased().replacingOccurrences(of: ".", with: "_")
    }
}
