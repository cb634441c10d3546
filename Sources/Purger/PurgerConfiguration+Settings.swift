extension PurgerConfiguration {
    /// The configuration reference (CONTRACT §4), in contract order, for `--help` and the README.
    ///
    /// Every row with a flag name is accepted by ``load(environment:flags:readFile:)`` as a flag; the
    /// `KAFKA_<PROPERTY>` row describes the librdkafka passthrough, which has no flag.
    public static let settings: [SettingDoc] = [
        doc("KAFKA_BOOTSTRAP_SERVERS", "(required for run)", "broker list, host:port[,host:port…]"),
        doc("KAFKA_GROUP_ID", "upload-purger", "consumer group"),
        SettingDoc(
            environmentName: "KAFKA_<PROPERTY>",
            flagName: nil,
            defaultText: "",
            meaning: "any librdkafka property: lower-cased, _ becomes . "
                + "(KAFKA_SECURITY_PROTOCOL=SASL_SSL sets security.protocol)"
        ),
        doc("PURGER_REQUESTS_TOPIC", "upload-deletion-requests", "input topic"),
        doc("PURGER_RESULTS_TOPIC", "upload-deletion-results", "completion events"),
        doc("PURGER_DLQ_TOPIC", "upload-deletion-requests.dlq", "dead letters"),
        doc("DATOCMS_API_TOKEN", "(this or the file, required for run)", "CMA token; never printed"),
        doc("DATOCMS_API_TOKEN_FILE", "", "file holding the CMA token (trailing newlines ignored)"),
        doc("DATOCMS_BASE_URL", "https://site-api.datocms.com", "CMA base URL (http or https)"),
        doc("DATOCMS_ENVIRONMENT", "(primary)", "environment of requests that name none"),
        doc(
            "DATOCMS_RATE_LIMIT", "60/3s",
            "request budget of the API token, shared by all requests of all replicas (<n>/<window>, window in ms, s, m)"
        ),
        doc("PURGER_BATCH_MAX_SIZE", "200", "ids per bulk operation (1–200)"),
        doc("PURGER_BATCH_MAX_WAIT_MS", "2000", "longest time an id waits for its batch to fill (1–3600000)"),
        doc(
            "PURGER_MAX_IN_FLIGHT_JOBS", "8",
            "the most jobs submitted and not completed at once (a hard bound); while a full batch waits for a free "
                + "slot the worker pauses its partitions (1–10000)"
        ),
        doc("PURGER_JOB_TIMEOUT_S", "600", "give up on a job result after this long, timed_out (1–604800)"),
        doc("PURGER_SHUTDOWN_TIMEOUT_S", "30", "drain budget on SIGTERM/SIGINT (1–86400)"),
        doc("PURGER_HTTP_PORT", "9464", "/metrics, /healthz, /readyz; 0 disables (0–65535)"),
        doc("PURGER_LOG_LEVEL", "info", "trace, debug, info, notice, warning, error or critical"),
        doc("PURGER_LOG_FORMAT", "json", "json or text"),
    ]

    private static func doc(_ environmentName: String, _ defaultText: String, _ meaning: String) -> SettingDoc {
        SettingDoc(
            environmentName: environmentName,
            flagName: flagName(of: environmentName),
            defaultText: defaultText,
            meaning: meaning
        )
    }
}
