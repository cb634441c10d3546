import Foundation
import Testing

/// `upload-purger bench` scenarios at tiny sizes: each runs to the end, accounts for every request and prints its
/// table and targets. The figures themselves are not checked; docs/BENCHMARKS.md has real runs.
@Suite("bench scenarios", .serialized, .timeLimit(.minutes(3)))
struct BenchScenarioTests {
    @Test func consumeReadsEveryMessageBothWays() async throws {
        let result = try await WorkerProcess.run(
            ["bench", "--scenario", "consume", "--requests", "300", "--runs", "1", "--partitions", "2"],
            environment: [:], timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("| **median** |"))
        #expect(result.stdout.contains("met: every message read and every id batched"))
    }

    @Test func backlogSamplesTheRunChildAndStopsItCleanly() async throws {
        let result = try await WorkerProcess.run(
            ["bench", "--scenario", "backlog", "--requests", "500", "--duration-s", "2", "--partitions", "2"],
            environment: [:], timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("met: clean exit on SIGTERM, no double deletion"))
        #expect(result.stdout.contains("met: peak memory ≤ 150 MB"))
    }

    @Test func replicasAccountForEveryRequest() async throws {
        let result = try await WorkerProcess.run(
            [
                "bench", "--scenario", "replicas", "--replicas", "2", "--requests", "30", "--partitions", "2",
                "--rate-limit", "600/3s", "--worker-env", "PURGER_BATCH_MAX_WAIT_MS=200",
            ],
            environment: [:], timeout: .seconds(90))
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("met: every request accounted, no double deletion"))
    }
}
