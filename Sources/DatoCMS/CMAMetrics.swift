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
