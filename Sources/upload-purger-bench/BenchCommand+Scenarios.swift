import ArgumentParser
import DatoCMS
import Foundation
import Logging

extension BenchCommand {
    /// Runs the `consume`, `backlog` or `replicas` scenario, prints its table and targets, and writes the JSON.
    func runScenario(logger: Logger) async throws {
        let requests = self.requests ?? scenario.defaultRequests
        let partitions = self.partitions ?? scenario.defaultPartitions
        let rateLimitText = self.rateLimit ?? scenario.defaultRateLimit
        let rateLimit = RateLimit(parsing: rateLimitText)!
        let extra = Dictionary(
            workerEnvironment.map { entry in
                let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), String(parts[1]))
            }
        ) { _, last in last }
        let output: any Encodable
        let accounted: Bool
        switch scenario {
        case .strategies:
            return
        case .consume:
            print("bench: consume, \(requests) requests of 1–\(maxIDsPerRequest) ids, \(partitions) partitions")
            let result = try await BenchConsume(
                requests: requests, maxIDsPerRequest: maxIDsPerRequest, partitions: partitions, runs: runs,
                workerEnvironment: extra, logger: logger
            ).run()
            print("\n" + BenchReport.table(result) + "\n\nTargets (issue 6)\n" + BenchReport.targets(result))
            (output, accounted) = (result, result.complete)
        case .backlog:
            print(
                "bench: backlog, \(requests) requests of 1 id, \(partitions) partitions, rate limit \(rateLimitText), "
                    + "jobs \(jobBaseMs) ms + \(jobPerUploadMs) ms/upload, up to \(durationS) s")
            let result = try await BenchBacklog(
                requests: requests, partitions: partitions, rateLimit: rateLimit, rateLimitText: rateLimitText,
                jobBase: .milliseconds(jobBaseMs), jobPerUpload: .milliseconds(jobPerUploadMs), jobJitter: jobJitter,
                duration: .seconds(durationS), workerEnvironment: extra, logger: logger
            ).run()
            print("\n" + BenchReport.table(result) + "\n\nTargets (issue 6)\n" + BenchReport.targets(result))
            (output, accounted) = (result, result.exitStatus == 0 && result.doubleDeletions == 0)
        case .replicas:
            let environment = BenchEnvironment(
                sizes: BenchWorkload.sizes(count: requests, maxIDsPerRequest: maxIDsPerRequest, seed: 2026),
                rateLimit: rateLimit, jobBase: .milliseconds(jobBaseMs), jobPerUpload: .milliseconds(jobPerUploadMs),
                jobJitter: jobJitter, inUseFraction: inUseFraction, naiveConcurrency: naiveConcurrency,
                timeout: .seconds(timeoutS))
            print(
                "bench: replicas, \(replicas) workers, \(requests) requests, "
                    + "\(environment.sizes.reduce(0, +)) uploads, \(partitions) partitions, rate limit \(rateLimitText)"
            )
            let result = try await BenchReplicas(
                replicas: replicas, environment: environment, partitions: partitions, rateLimitText: rateLimitText,
                workerEnvironment: extra, logger: logger, stopAfter: stopAfterRequests
            ).run()
            print("\n" + BenchReport.table(result) + "\n\nTargets (issue 6)\n" + BenchReport.targets(result))
            (output, accounted) = (result, result.complete && result.doubleDeletions == 0)
        }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(output).write(to: URL(fileURLWithPath: json))
        }
        if !accounted { throw ExitCode(1) }
    }
}
