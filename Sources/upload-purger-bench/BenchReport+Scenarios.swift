import Foundation

/// The tables and target checks of the `consume`, `backlog` and `replicas` scenarios, all from measured results.
extension BenchReport {
    /// Prints a progress line and flushes it, so that a redirected log shows it while the scenario runs.
    static func progress(_ line: String) {
        print(line)
        fflush(nil)
    }

    // MARK: - consume

    static func table(_ result: BenchConsume.Result) -> String {
        var lines = [
            "| run (first) | plain consumer (msg/s) | worker, end to end (msg/s) | ratio "
                + "| CPU s / 100k msgs, plain | CPU s / 100k msgs, worker |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for (index, run) in result.runs.enumerated() {
            lines.append(
                "| \(index + 1) (\(index % 2 == 1 ? "worker" : "plain")) | "
                    + "\(format(run.plain.messagesPerSecond, 0)) | \(format(run.pipeline.messagesPerSecond, 0)) | "
                    + "\(format(run.ratio, 3)) | \(format(run.plain.cpuPer100k, 1)) | "
                    + "\(format(run.pipeline.cpuPer100k, 1)) |")
        }
        lines.append(
            "| **median** | \(format(result.medianPlain, 0)) | \(format(result.medianPipeline, 0)) | "
                + "**\(format(result.medianRatio, 3))** | "
                + "\(format(BenchConsume.median(result.runs.map(\.plain.cpuPer100k)), 1)) | "
                + "\(format(BenchConsume.median(result.runs.map(\.pipeline.cpuPer100k)), 1)) |")
        return lines.joined(separator: "\n")
            + "\n\n\(result.requests) requests (\(result.uploads) upload ids, mean value \(format(result.meanValueBytes, 0)) "
            + "bytes) on \(result.partitions) partitions; the worker published \(result.batchesPerReading) completion "
            + "events carrying \(result.idsPerReading) ids per reading; median worker "
            + "\(format(result.medianPipeline * Double(result.uploads) / Double(max(result.requests, 1)), 0)) ids/s."
    }

    static func targets(_ result: BenchConsume.Result) -> String {
        [
            target(
                "the worker (decoding, batching, API calls, events) ≥ ½ of the plain consumer's rate",
                result.medianRatio >= 0.5,
                "\(format(result.medianRatio, 3)) (median of \(result.runs.count) runs: "
                    + "\(format(result.medianPipeline, 0)) against \(format(result.medianPlain, 0)) msg/s)"),
            target(
                "every message read and every id batched", result.complete,
                "\(result.idsPerReading)/\(result.uploads) ids in completion events"),
        ].joined(separator: "\n")
    }

    // MARK: - backlog

    static func table(_ result: BenchBacklog.Result) -> String {
        let settings = result.workerEnvironment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return [
            "| backlog | worker settings | sampled for | deleted (per s) | drained | peak RSS (VmHWM) | peak reached after "
                + "| RSS at stop | exit status |",
            "|---:|---|---:|---:|---|---:|---:|---:|---:|",
            "| \(result.requests) requests | \(settings.isEmpty ? "defaults" : settings.joined(separator: " ")) | "
                + "\(format(result.runSeconds, 0)) s | \(result.deleted) (\(format(result.deletionsPerSecond, 0))) | "
                + "\(result.drained ? "yes" : "no") | \(BenchBacklog.megabytes(result.peakResidentBytes)) | "
                + "\(format(result.peakAfterSeconds, 1)) s | \(BenchBacklog.megabytes(result.residentAtStopBytes)) | "
                + "\(result.exitStatus.map { "\($0)" } ?? "killed") |",
        ].joined(separator: "\n")
    }

    static func targets(_ result: BenchBacklog.Result) -> String {
        [
            target(
                "peak memory ≤ 150 MB with a \(result.requests)-request backlog",
                result.peakResidentBytes > 0 && result.peakResidentBytes <= 150 * 1_048_576,
                result.peakResidentBytes > 0 ? BenchBacklog.megabytes(result.peakResidentBytes) : "nothing (no sample)"),
            target(
                "clean exit on SIGTERM, no double deletion", result.exitStatus == 0 && result.doubleDeletions == 0,
                "exit \(result.exitStatus.map { "\($0)" } ?? "killed"), \(result.doubleDeletions) double deletions"),
        ].joined(separator: "\n")
    }

    // MARK: - replicas

    static func table(_ result: BenchReplicas.Result) -> String {
        let peaks = result.peakResidentBytes.map { BenchBacklog.megabytes($0) }.joined(separator: ", ")
        return [
            "| replicas | uploads | deletions / s (middle 80 %) | % of ceiling (ceiling / s) | polls / job "
                + "| API requests (per s) "
                + "| 429s (% of requests) | requests before a 429's reset | most requests in one window "
                + "| double deletions | peak RSS per worker | wall |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
            "| \(result.replicas)\(result.complete ? "" : " **(INCOMPLETE)**") | \(result.uploads) | "
                + "\(format(result.deletionsPerSecond, 0)) (\(format(result.middleDeletionsPerSecond, 0))) | "
                + "\(format(result.ceilingRatio * 100, 0)) % (\(format(result.ceilingPerSecond, 0))) | "
                + "\(format(result.pollsPerJob, 2)) | "
                + "\(result.apiRequests) (\(format(Double(result.apiRequests) / result.wallSeconds, 1))) | "
                + "\(result.rateLimited) (\(format(result.rateLimitedShare * 100, 2)) %) | "
                + "\(result.requestsBeforeReset) | \(result.maxRequestsInWindow) | \(result.doubleDeletions) | "
                + "\(peaks) | \(format(result.wallSeconds, 1)) s |",
        ].joined(separator: "\n")
    }

    static func targets(_ result: BenchReplicas.Result) -> String {
        [
            target(
                "\(result.replicas) replicas < 1 % 429s", result.rateLimitedShare < 0.01,
                "\(result.rateLimited) of \(result.apiRequests) (\(format(result.rateLimitedShare * 100, 2)) %)"),
            target(
                "aggregate throughput against the ceiling (reported; the strategies' target is ≥ 90 %)",
                result.ceilingRatio >= 0.9,
                "\(format(result.ceilingRatio * 100, 0)) % (\(format(result.deletionsPerSecond, 0)) of "
                    + "\(format(result.ceilingPerSecond, 0)) deletions/s over the whole run; "
                    + "\(format(result.middleDeletionsPerSecond / max(result.ceilingPerSecond, 0.001) * 100, 0)) % "
                    + "while the middle 80 % of the uploads were deleted)"),
            target(
                "stopped with SIGTERM at once: every partition committed to what was reported, nothing unreported",
                result.partitionsCommittedToReported == Int(result.partitions) && result.committedNotReported == 0,
                "\(result.partitionsCommittedToReported) of \(result.partitions) partitions; "
                    + "\(result.reportedNotCommitted) reported requests not committed, "
                    + "\(result.committedNotReported) committed requests not reported; stopped at "
                    + "\(result.reportedAtStop) of \(result.requests) requests reported"),
            result.stoppedMidRun
                ? target(
                    "stopped mid-run: every deletion reported, no double deletion",
                    result.complete && result.doubleDeletions == 0 && result.reportedDeletions == result.deleted,
                    "\(result.deleted) deleted, \(result.reportedDeletions) reported deleted (drains included), "
                        + "\(result.doubleDeletions) double deletions, exit statuses \(exitStatuses(result))")
                : target(
                    "every request accounted, no double deletion",
                    result.complete && result.doubleDeletions == 0 && result.deleted == result.uploads,
                    "\(result.deleted)/\(result.uploads) deleted, \(result.events) events, "
                        + "\(result.doubleDeletions) double deletions, exit statuses \(exitStatuses(result))"),
        ].joined(separator: "\n")
    }

    private static func exitStatuses(_ result: BenchReplicas.Result) -> String {
        result.exitStatuses.map { $0.map { "\($0)" } ?? "killed" }.joined(separator: " ")
    }

    private static func target(_ name: String, _ met: Bool, _ figure: String) -> String {
        "- \(met ? "met" : "MISSED"): \(name) — measured \(figure)"
    }
}
