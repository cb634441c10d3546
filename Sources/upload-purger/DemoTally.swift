import Foundation
import Kafka
import Logging
import Purger
import Synchronization

/// What the demo has read back from the results and dead-letter topics.
final class DemoTally: Sendable {
    struct Snapshot: Sendable {
        var reportedRequests: Set<String> = []
        var batches = 0
        var byStatus: [String: Int] = [:]
        var successful = 0
        var notFound = 0
        var failed = 0
        var inferred = 0
        var deadLettered = 0

        func isComplete(for workload: DemoWorkload) -> Bool {
            deadLettered >= workload.malformed && reportedRequests.count >= workload.valid.count
                && workload.valid.keys.allSatisfy(reportedRequests.contains)
        }

        func progressLine(of workload: DemoWorkload, elapsed: Duration) -> String {
            let accounted = reportedRequests.count + deadLettered
            let total = workload.valid.count + workload.malformed
            return "\(accounted)/\(total) requests accounted · \(batches) batches · \(successful) deleted · "
                + "\(notFound) not found · \(failed) still present · \(deadLettered) dead-lettered · \(elapsed.components.seconds) s"
        }
    }

    private let state = Mutex(Snapshot())

    func snapshot() -> Snapshot { state.withLock { $0 } }

    /// Reads both topics until `done` holds or `timeout` passes; calls `report` about four times a second.
    func follow(
        results: String, dlq: String, bootstrapServers: String, until done: (Snapshot) -> Bool, timeout: Duration,
        logger: Logger, report: (Snapshot) -> Void
    ) async throws -> Bool {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: bootstrapServers, groupID: "demo-reader-\(UUID().uuidString)"),
            logger: logger)
        try consumer.subscribe(topics: [results, dlq])
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var lastReport = ContinuousClock.now
        var complete = false
        while !complete, ContinuousClock.now < deadline {
            for message in try await consumer.poll(maxMessages: 1_000, timeout: .milliseconds(100)) {
                record(message, isDeadLetter: message.topicPartition.topic == dlq)
            }
            let snapshot = self.snapshot()
            complete = done(snapshot)
            if complete || ContinuousClock.now - lastReport > .milliseconds(250) {
                report(snapshot)
                lastReport = ContinuousClock.now
            }
        }
        await consumer.close(timeout: .seconds(2))
        return complete
    }

    private func record(_ message: KafkaMessage, isDeadLetter: Bool) {
        if isDeadLetter {
            let code = message.headers.first { $0.name == DeadLetter.codeHeader }?.value
            // Timed-out jobs also dead-letter their requests for replay; those are reported in events already.
            guard code != Array(DeadLetterCode.jobTimeout.rawValue.utf8) else { return }
            state.withLock { $0.deadLettered += 1 }
            return
        }
        guard let value = message.value,
            let event = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any]
        else { return }
        let requests = (event["requests"] as? [[String: Any]] ?? []).compactMap { $0["request_id"] as? String }
        state.withLock { tally in
            tally.batches += 1
            tally.byStatus[event["status"] as? String ?? "?", default: 0] += 1
            tally.successful += event["successful"] as? Int ?? 0
            tally.notFound += event["not_found"] as? Int ?? 0
            tally.failed += event["failed"] as? Int ?? 0
            if event["counts"] as? String == "inferred" { tally.inferred += 1 }
            tally.reportedRequests.formUnion(requests)
        }
    }
}

/// A live progress line on a terminal; plain periodic lines otherwise (logs, CI).
final class ProgressDisplay: Sendable {
    private let isTerminal = isatty(STDOUT_FILENO) == 1
    private let lastPlain = Mutex(ContinuousClock.now)

    func line(_ text: String) {
        write(text + "\n")
    }

    func progress(_ text: String) {
        if isTerminal {
            write("\r\u{1B}[2K\(text)")
        } else {
            let due = lastPlain.withLock { last in
                guard ContinuousClock.now - last >= .seconds(2) else { return false }
                last = ContinuousClock.now
                return true
            }
            if due { line(text) }
        }
    }

    func finishProgress() {
        if isTerminal { write("\n") }
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
