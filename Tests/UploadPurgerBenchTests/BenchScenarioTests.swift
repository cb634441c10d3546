import DatoCMS
import Foundation
import Logging
import Testing

@testable import upload_purger_bench

/// The benchmark's scenarios at tiny sizes, in this process (the backlog and replicas scenarios start the real
/// `upload-purger` binary of this build as children): each runs to the end and accounts for every request. Only
/// outcomes and counts are checked, never figures; docs/BENCHMARKS.md has real runs.
@Suite("bench scenarios", .serialized, .timeLimit(.minutes(3)))
struct BenchScenarioTests {
    private static let logger: Logger = {
        var logger = Logger(label: "bench-tests")
        logger.logLevel = .critical
        return logger
    }()

    @Test func strategiesEachAccountForEveryRequest() async throws {
        let sizes = BenchWorkload.sizes(count: 12, maxIDsPerRequest: 40, seed: 2026)
        let environment = BenchEnvironment(
            sizes: sizes, rateLimit: RateLimit(requests: 600, window: .seconds(3)), jobBase: .milliseconds(50),
            jobPerUpload: .zero, jobJitter: 0, inUseFraction: 0, naiveConcurrency: 4, timeout: .seconds(60))
        var results: [BenchResult] = []
        for strategy in BenchStrategy.allCases {
            results.append(try await BenchRun(strategy: strategy, environment: environment, logger: Self.logger).run())
        }
        for result in results {
            #expect(result.complete, "\(result.title)")
            #expect(result.deleted == sizes.reduce(0, +), "\(result.title)")
            #expect(result.doubleDeletions == 0, "\(result.title)")
        }
        let table = BenchReport.table(results)
        #expect(table.split(separator: "\n").count == 2 + BenchStrategy.allCases.count)
        for strategy in [BenchStrategy.uploadPurger, .uploadPurgerPoll] {
            #expect(BenchReport.targets(results).contains("met: \(strategy.title): every request accounted"))
        }
    }

    @Test func consumeReadsEveryMessageBothWays() async throws {
        let result = try await BenchConsume(
            requests: 300, maxIDsPerRequest: 40, partitions: 2, runs: 1, logger: Self.logger
        ).run()
        #expect(result.complete)
        #expect(result.requests == 300)
        #expect(result.idsPerReading == result.uploads)
        #expect(result.batchesPerReading >= result.uploads / CMAClient.maximumBulkSize)
        #expect(result.runs.count == 1)
        #expect(BenchReport.table(result).contains("| **median** |"))
        #expect(BenchReport.targets(result).contains("met: every message read and every id batched"))
    }

    @Test func backlogSamplesTheRunChildAndStopsItCleanly() async throws {
        let result = try await BenchBacklog(
            requests: 500, partitions: 2, rateLimit: RateLimit(requests: 1000, window: .seconds(1)),
            rateLimitText: "1000/1s", jobBase: .milliseconds(500), jobPerUpload: .milliseconds(5), jobJitter: 0.1,
            duration: .seconds(2), workerEnvironment: [:], logger: Self.logger
        ).run()
        #expect(result.exitStatus == 0, "see \(result.logPath)")
        #expect(result.doubleDeletions == 0)
        #expect(result.peakResidentBytes > 0)
        #expect(BenchReport.targets(result).contains("met: clean exit on SIGTERM, no double deletion"))
    }

    @Test func replicasAccountForEveryRequest() async throws {
        let sizes = BenchWorkload.sizes(count: 30, maxIDsPerRequest: 40, seed: 2026)
        let environment = BenchEnvironment(
            sizes: sizes, rateLimit: RateLimit(requests: 600, window: .seconds(3)), jobBase: .milliseconds(500),
            jobPerUpload: .milliseconds(5), jobJitter: 0.1, inUseFraction: 0, naiveConcurrency: 16,
            timeout: .seconds(90))
        let result = try await BenchReplicas(
            replicas: 2, environment: environment, partitions: 2, rateLimitText: "600/3s",
            workerEnvironment: ["PURGER_BATCH_MAX_WAIT_MS": "200"], logger: Self.logger
        ).run()
        #expect(result.complete, "see \(result.logDirectory)")
        #expect(result.deleted == sizes.reduce(0, +))
        #expect(result.doubleDeletions == 0)
        #expect(result.exitStatuses == [0, 0])
        #expect(BenchReport.targets(result).contains("met: every request accounted, no double deletion"))
        #expect(result.committedNotReported == 0, "no committed offset passes unreported work")
    }

    @Test func commandLineNamesTheScenariosAndRejectsBadValues() throws {
        let command = try BenchCommand.parse(["--scenario", "replicas", "--replicas", "3"])
        #expect(command.scenario == .replicas)
        #expect(command.replicas == 3)
        #expect(throws: (any Error).self) { try BenchCommand.parse(["--rate-limit", "fast"]) }
        #expect(throws: (any Error).self) { try BenchCommand.parse(["--scenario", "bench"]) }
    }

    @Test func theWorkerBinaryIsTheShippedOneNextToThisBuild() throws {
        let binary = try BenchWorkerProcess.workerBinary()
        #expect(binary.lastPathComponent == "upload-purger")
        #expect(FileManager.default.isExecutableFile(atPath: binary.path))
    }
}
