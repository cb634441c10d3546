import Metrics

/// The client's swift-metrics instruments; no-ops unless the application bootstrapped a backend.
enum CMAMetrics {
    static func recordResponse(endpoint: String, status: String) {
        Counter(label: "purger_api_requests_total", dimensions: [("endpoint", endpoint), ("status", status)])
            .increment()
    }

    static func recordRateLimitWait(_ duration: Duration) {
        Counter(label: "purger_rate_limit_waits_total").increment()
        Timer(label: "purger_rate_limit_wait_seconds").recordNanoseconds(duration.nanoseconds)
    }

    static func recordFinishedJob(duration: Duration, polls: Int) {
        Timer(label: "purger_job_duration_seconds").recordNanoseconds(duration.nanoseconds)
        Recorder(label: "purger_polls_per_job").record(polls)
    }
}

extension CMAMetrics {
    static func recordJobResult(source: String) {
        Counter(label: "purger_job_results_total", dimensions: [("source", source)]).increment()
    }

    static func recordPushConnection(up: Bool) {
        Gauge(label: "purger_push_connected").record(up ? 1 : 0)
    }

    static func recordPushReconnect() {
        Counter(label: "purger_push_reconnects_total").increment()
    }
}

extension CMAClient {
    /// Makes the push instruments once (results by source, the connection, reconnections), so that a backend
    /// knows their names before the first pushed result: `upload-purger run --print-metrics` lists them.
    public static func registerPushInstruments() {
        for source in ["push", "poll"] {
            _ = Counter(label: "purger_job_results_total", dimensions: [("source", source)])
        }
        _ = Gauge(label: "purger_push_connected")
        _ = Counter(label: "purger_push_reconnects_total")
    }
}
