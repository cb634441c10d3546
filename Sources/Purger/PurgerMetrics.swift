import Foundation
import Kafka
import Metrics

/// The worker's metrics (CONTRACT section 7), reported through swift-metrics; the API client reports its own
/// (`purger_api_requests_total`, rate-limit waits, job durations, polls per job).
///
/// A new instrument made on demand by a method must also be made in ``registerEveryInstrument()``.
public struct PurgerMetrics: Sendable {
    let requestsConsumed = Counter(label: "purger_requests_consumed_total")
    let batchesSubmitted = Counter(label: "purger_batches_submitted_total")
    let batchSize = Recorder(label: "purger_batch_size", aggregate: true)
    /// Requested uploads by what became of them (CONTRACT §3): deleted by this worker, already absent, still there.
    let uploadsDeleted = Counter(label: "purger_uploads_total", dimensions: [("outcome", "deleted")])
    let uploadsNotFound = Counter(label: "purger_uploads_total", dimensions: [("outcome", "not_found")])
    let uploadsStillPresent = Counter(label: "purger_uploads_total", dimensions: [("outcome", "still_present")])
    let inFlightJobs = Gauge(label: "purger_in_flight_jobs")
    /// The bound on jobs in flight now (`PURGER_MAX_IN_FLIGHT_JOBS`, or what `auto` chose).
    let inFlightLimit = Gauge(label: "purger_in_flight_limit")
    let pausedPartitions = Gauge(label: "purger_paused_partitions")
    let endToEndLatency = Metrics.Timer(label: "purger_end_to_end_latency_seconds", preferredDisplayUnit: .seconds)
    let deadLetters = Counter(label: "purger_dead_letters_total")

    /// Makes every instrument once, with placeholder labels (and values), so that the bootstrapped backend knows
    /// all their names (`upload-purger run --print-metrics`). Never call it in a process that exports metrics.
    public static func registerEveryInstrument() {
        let metrics = PurgerMetrics()
        metrics.invalidRequest(code: "placeholder")
        metrics.completion(status: "placeholder")
        metrics.consumerLag([TopicPartition(topic: "placeholder", partition: 0): 0])
        metrics.inFlightLimit(16, reason: .initial)
    }

    /// The bound and, for `auto`, why: `purger_in_flight_limit_reason{reason}` is 1 for the current reason and 0
    /// for the others.
    func inFlightLimit(_ limit: Int, reason: InFlightLimiter.Reason?) {
        inFlightLimit.record(limit)
        guard let reason else { return }
        for each in InFlightLimiter.Reason.allCases {
            Gauge(label: "purger_in_flight_limit_reason", dimensions: [("reason", each.rawValue)])
                .record(each == reason ? 1 : 0)
        }
    }

    func invalidRequest(code: String) {
        Counter(label: "purger_invalid_requests_total", dimensions: [("code", code)]).increment()
    }

    func completion(status: String) {
        Counter(label: "purger_batches_completed_total", dimensions: [("status", status)]).increment()
    }

    func endToEnd(since start: Date, until end: Date) {
        endToEndLatency.recordNanoseconds(Int64(max(0, end.timeIntervalSince(start)) * 1_000_000_000))
    }

    func consumerLag(_ lag: [TopicPartition: Int64]) {
        for (partition, value) in lag {
            Gauge(
                label: "purger_consumer_lag",
                dimensions: [("topic", partition.topic), ("partition", String(partition.partition))]
            ).record(value)
        }
    }
}
