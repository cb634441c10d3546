import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

extension PipelineEndToEndTests {
    /// `PURGER_MAX_IN_FLIGHT_JOBS=auto` against the simulator's kinds of API. What the bound settles on depends on
    /// timing, so these assert what must hold whatever it chose (nothing lost, nothing above its maximum, offsets at
    /// the end) and print the bound; the figures are the bench's (docs/BENCHMARKS.md).
    @Suite("Adaptive bound end to end")
    struct AdaptiveBoundEndToEndTests {
        static func run(
            _ simulator: SimulatorConfiguration, count: Int, batchMaxSize: Int,
            during: @escaping @Sendable (PipelineFixture) async -> Void = { _ in }
        ) async throws -> (bound: Int, peak: Int, simulator: SimulatorStats) {
            let fixture = try await PipelineFixture(simulator: simulator)
            let (requestIDs, ends) = try await WorkerLifecycleEndToEndTests.produceDistinctRequests(
                count, fixture: fixture)
            let group = "purger-\(UUID())"
            var settings = try fixture.settings(group: group, batchMaxSize: batchMaxSize)
            settings.configuration.maxInFlightJobs = .auto
            let worker = fixture.worker(settings)
            let (results, failure) = try await withRunningWorker(worker) {
                async let change: Void = during(fixture)
                let results = try await fixture.read(fixture.resultsTopic, timeout: .seconds(120)) {
                    Set(reportedRequestIDs($0).keys).isSuperset(of: requestIDs)
                }
                await change
                return (results, worker.inFlightLimit)
            }
            #expect(failure == nil)
            #expect(Set(reportedRequestIDs(results.0).keys) == requestIDs, "every request is reported")
            try await WorkerLifecycleEndToEndTests.expectCommitted(ends, group: group, fixture: fixture)
            let stats = fixture.simulator.stats()
            #expect(stats.doubleDeletions == 0)
            await fixture.simulator.shutdown()
            return (results.1, worker.peakRunningJobs, stats)
        }

        @Test func anAPIThatRunsOneJobAtATimeLosesNothing() async throws {
            let (bound, peak, stats) = try await Self.run(
                PipelineFixture.fastSimulator(jobBaseDuration: .milliseconds(40), maxConcurrentJobs: 1), count: 600,
                batchMaxSize: 5)
            print("one job at a time, auto: bound 16 -> \(bound), peak \(peak) running")
            #expect(peak <= InFlightBound.autoMaximum)
            #expect(stats.maxOpenJobs <= peak, "the API never saw more open jobs than the worker ran")
        }

        @Test func jobsThatGetSlowerMidRunLoseNothing() async throws {
            let (bound, peak, _) = try await Self.run(
                PipelineFixture.fastSimulator(jobBaseDuration: .milliseconds(40)), count: 1200, batchMaxSize: 10
            ) { fixture in
                _ = await eventually(timeout: .seconds(60)) { fixture.simulator.stats().jobsNoticed >= 20 }
                fixture.simulator.setJobDurationFactor(2)
            }
            print("jobs twice as long mid-run, auto: bound 16 -> \(bound), peak \(peak) running")
            #expect(peak <= InFlightBound.autoMaximum)
        }
    }
}
