import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Synchronization

/// Reads a strategy's completion events back from the results topic: when each request was completed, and the
/// counts.
final class BenchCollector: Sendable {
    struct Snapshot: Sendable {
        /// Request id → the latest `completed_at` of the events listing it (a request may span batches).
        var completedAt: [String: Date] = [:]
        var events = 0
        var successful = 0
        var notFound = 0
        var failed = 0
        /// Events whose counts are marked inferred.
        var inferred = 0
        /// Events with `failed > 0`, and those of them naming the failed ids.
        var eventsWithFailures = 0
        var eventsNamingFailures = 0
        /// `GET /uploads` lookups the events report.
        var lookups = 0
        var byStatus: [String: Int] = [:]
        var lastCompletion: Date?
        /// The earliest `first_enqueued_at`: when the worker took in the first request it reported on.
        var firstEnqueued: Date?
        /// The request offsets the events report, by partition of the requests topic.
        var reportedOffsets: [Int32: Set<Int64>] = [:]

        /// Ids the events account for, in all three outcomes.
        var ids: Int { successful + notFound + failed }
    }

    private let state = Mutex(Snapshot())

    func snapshot() -> Snapshot { state.withLock { $0 } }

    /// Reads `topic` until `expected` distinct requests are reported, and the events carry at least `expectedIDs`
    /// ids, or `timeout` passes; true when all are. (A request split over batches is reported by its first event;
    /// the ids of its last one may still be on the way.)
    func follow(
        topic: String, bootstrapServers: String, expected: Int, expectedIDs: Int = 0, timeout: Duration,
        logger: Logger
    ) async throws -> Bool {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: bootstrapServers, groupID: "bench-reader-\(UUID().uuidString)"),
            logger: logger)
        try consumer.subscribe(topics: [topic])
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var complete = false
        while !complete, ContinuousClock.now < deadline, !Task.isCancelled {
            for message in try await consumer.poll(maxMessages: 1_000, timeout: .milliseconds(100)) {
                record(message, formatter: formatter)
            }
            complete = state.withLock {
                $0.completedAt.count >= expected && $0.ids >= expectedIDs
            }
        }
        await consumer.close(timeout: .seconds(2))
        return complete
    }

    private func record(_ message: KafkaMessage, formatter: ISO8601DateFormatter) {
        guard let value = message.value,
            let event = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any],
            let completed = (event["completed_at"] as? String).flatMap(formatter.date(from:))
        else { return }
        let enqueued = (event["first_enqueued_at"] as? String).flatMap(formatter.date(from:))
        let entries = event["requests"] as? [[String: Any]] ?? []
        let requests = entries.compactMap { $0["request_id"] as? String }
        let positions = entries.compactMap { entry -> (Int32, Int64)? in
            guard let partition = entry["partition"] as? Int, let offset = entry["offset"] as? Int else { return nil }
            return (Int32(partition), Int64(offset))
        }
        state.withLock { tally in
            tally.events += 1
            tally.byStatus[event["status"] as? String ?? "?", default: 0] += 1
            tally.successful += event["successful"] as? Int ?? 0
            let failed = event["failed"] as? Int ?? 0
            tally.notFound += event["not_found"] as? Int ?? 0
            tally.failed += failed
            tally.lookups += event["lookups"] as? Int ?? 0
            if event["counts"] as? String == "inferred" { tally.inferred += 1 }
            if failed > 0 {
                tally.eventsWithFailures += 1
                if event["failed_upload_ids"] is [Any] { tally.eventsNamingFailures += 1 }
            }
            for request in requests {
                tally.completedAt[request] = max(tally.completedAt[request] ?? completed, completed)
            }
            for (partition, offset) in positions { tally.reportedOffsets[partition, default: []].insert(offset) }
            tally.lastCompletion = max(tally.lastCompletion ?? completed, completed)
            if let enqueued { tally.firstEnqueued = min(tally.firstEnqueued ?? enqueued, enqueued) }
        }
    }
}

/// The simulator's counters once a second: the time series behind the chart.
final class BenchSampler: Sendable {
    /// Deletions per second while the deleted share of `total` went from `from` to `to`, with both instants
    /// interpolated between the per-second samples; `nil` when that took less than `minimumSeconds` (or no time)
    /// or did not happen.
    static func deletionRate(
        _ samples: [Sample], total: Int, from: Double, to: Double, minimumSeconds: Double
    ) -> Double? {
        func secondsUntil(_ share: Double) -> Double? {
            let target = Double(total) * share
            for (previous, sample) in zip(samples, samples.dropFirst()) where Double(sample.deletions) >= target {
                guard sample.deletions > previous.deletions else { return sample.t }
                let fraction = (target - Double(previous.deletions)) / Double(sample.deletions - previous.deletions)
                return previous.t + (sample.t - previous.t) * max(fraction, 0)
            }
            return nil
        }
        guard let start = secondsUntil(from), let end = secondsUntil(to), end > start, end - start >= minimumSeconds
        else { return nil }
        return Double(total) * (to - from) / (end - start)
    }

    struct Sample: Sendable, Codable {
        /// Seconds since the strategy started.
        var t: Double
        /// Cumulative uploads deleted.
        var deletions: Int
        /// Cumulative 429 responses.
        var rateLimited: Int
        /// Cumulative API requests received.
        var requests: Int
    }

    private let samples = Mutex<[Sample]>([])

    var series: [Sample] { samples.withLock { $0 } }

    /// Samples `simulator` every second from `start` until cancelled.
    func run(simulator: CMASimulator, start: ContinuousClock.Instant) async {
        var next = start
        while !Task.isCancelled {
            take(simulator: simulator, start: start)
            next = next.advanced(by: .seconds(1))
            do { try await Task.sleep(until: next, clock: .continuous) } catch { break }
        }
    }

    /// One sample now (also called once at the end, so the series reaches the final counts).
    func take(simulator: CMASimulator, start: ContinuousClock.Instant) {
        let stats = simulator.stats()
        let elapsed = ContinuousClock.now - start
        let sample = Sample(
            t: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            deletions: stats.deletions, rateLimited: stats.rateLimited,
            requests: stats.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) })
        samples.withLock { $0.append(sample) }
    }
}
