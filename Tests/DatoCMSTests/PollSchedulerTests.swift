import DatoCMS
import Testing

@Suite struct PollSchedulerTests {
    struct Simulation {
        var polls = 0
        var jobs = 0
        var delayRatios: [Double] = []
    }

    /// Runs jobs with known true durations through the scheduler on a virtual clock.
    func simulate(
        _ scheduler: inout PollScheduler, jobs: Int, sizes: [Int], base: Double, perUpload: Double, jitter: Double,
        seed: UInt64
    ) -> Simulation {
        var random = TestRandom(state: seed)
        var result = Simulation()
        for index in 0..<jobs {
            let size = sizes[index % sizes.count]
            let truth = (base + perUpload * Double(size)) * (1 + Double.random(in: -jitter...jitter, using: &random))
            var pollAt = scheduler.firstPollDelay(uploads: size).secondsDouble
            var misses = 0
            var lastMiss: Double?
            var polls = 1
            while pollAt < truth {
                misses += 1
                lastMiss = pollAt
                pollAt += scheduler.delayAfterMiss(uploads: size, misses: misses).secondsDouble
                polls += 1
            }
            scheduler.recordCompletion(
                uploads: size, lastMissAt: lastMiss.map { .seconds($0) }, foundAt: .seconds(pollAt))
            result.polls += polls
            result.jobs += 1
            result.delayRatios.append((pollAt - truth) / truth)
        }
        return result
    }

    @Test func learnsToPollAboutOncePerJobAndNoticesCompletionWithinTwentyPercent() {
        var scheduler = PollScheduler()
        _ = simulate(&scheduler, jobs: 40, sizes: [200], base: 0.4, perUpload: 0.01, jitter: 0.1, seed: 1)
        let measured = simulate(&scheduler, jobs: 400, sizes: [200], base: 0.4, perUpload: 0.01, jitter: 0.1, seed: 2)
        let pollsPerJob = Double(measured.polls) / Double(measured.jobs)
        let meanDelay = measured.delayRatios.reduce(0, +) / Double(measured.jobs)
        #expect(pollsPerJob <= 1.3, "polls per job: \(pollsPerJob)")
        #expect(meanDelay <= 0.2, "mean notice delay: \(meanDelay)")
    }

    @Test func learnsFixedAndPerUploadCostAcrossBatchSizes() {
        var scheduler = PollScheduler()
        let sizes = [20, 200, 80, 150, 5, 120]
        _ = simulate(&scheduler, jobs: 60, sizes: sizes, base: 1.0, perUpload: 0.02, jitter: 0.05, seed: 3)
        let measured = simulate(&scheduler, jobs: 300, sizes: sizes, base: 1.0, perUpload: 0.02, jitter: 0.05, seed: 4)
        let pollsPerJob = Double(measured.polls) / Double(measured.jobs)
        let meanDelay = measured.delayRatios.reduce(0, +) / Double(measured.jobs)
        #expect(pollsPerJob <= 1.3, "polls per job: \(pollsPerJob)")
        #expect(meanDelay <= 0.2, "mean notice delay: \(meanDelay)")
        let small = scheduler.predictedDuration(uploads: 10).secondsDouble
        let large = scheduler.predictedDuration(uploads: 200).secondsDouble
        #expect(abs(small - 1.2) < 0.25, "10 uploads predicted \(small)s")
        #expect(abs(large - 5.0) < 0.6, "200 uploads predicted \(large)s")
    }

    @Test func convergesFromAPriorFarTooLong() {
        // The prior says 3 s for 200 ids; jobs really take 60 ms.
        var scheduler = PollScheduler()
        let warmUp = simulate(&scheduler, jobs: 30, sizes: [200], base: 0.05, perUpload: 0.00005, jitter: 0.1, seed: 5)
        #expect(warmUp.polls < 30 * 3)
        let measured = simulate(
            &scheduler, jobs: 200, sizes: [200], base: 0.05, perUpload: 0.00005, jitter: 0.1, seed: 6)
        let meanDelay = measured.delayRatios.reduce(0, +) / Double(measured.jobs)
        #expect(Double(measured.polls) / Double(measured.jobs) <= 1.3)
        #expect(meanDelay <= 0.2, "mean notice delay: \(meanDelay)")
    }

    @Test func backsOffBrieflyAndIncreasinglyAfterMisses() {
        let scheduler = PollScheduler()
        let predicted = scheduler.predictedDuration(uploads: 100)
        let first = scheduler.delayAfterMiss(uploads: 100, misses: 1)
        let second = scheduler.delayAfterMiss(uploads: 100, misses: 2)
        #expect(first < predicted)
        #expect(second == first * 2)
        #expect(scheduler.delayAfterMiss(uploads: 100, misses: 40) == scheduler.configuration.maximumBackoff)
    }
}

extension Duration {
    var secondsDouble: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

@Suite struct LinearPollStrategyTests {
    @Test func pollsEveryStepFromSubmissionRegardlessOfSizeOrMisses() {
        let scheduler = PollScheduler(strategy: .linear(step: .seconds(1)))
        for uploads in [1, 20, 200] {
            #expect(scheduler.firstPollDelay(uploads: uploads) == .seconds(1))
            for misses in 1...40 {
                #expect(scheduler.delayAfterMiss(uploads: uploads, misses: misses) == .seconds(1))
            }
        }
    }

    @Test func learningDoesNotChangeTheLinearSchedule() {
        var scheduler = PollScheduler(strategy: .linear(step: .milliseconds(1500)))
        for _ in 0..<50 {
            scheduler.recordCompletion(uploads: 200, lastMissAt: .seconds(3), foundAt: .seconds(4.5))
            scheduler.recordCompletion(uploads: 5, lastMissAt: nil, foundAt: .seconds(1.5))
        }
        #expect(scheduler.firstPollDelay(uploads: 200) == .milliseconds(1500))
        #expect(scheduler.delayAfterMiss(uploads: 200, misses: 3) == .milliseconds(1500))
    }

    /// A job of true duration d is found by poll ⌈d / step⌉, so the official schedule costs about one poll per second
    /// of job time.
    @Test func costsOnePollPerStepOfJobTime() {
        let scheduler = PollScheduler(strategy: .linear(step: .seconds(1)))
        for (truth, expected) in [(0.8, 1), (1.8, 2), (4.2, 5)] {
            var pollAt = scheduler.firstPollDelay(uploads: 200).secondsDouble
            var polls = 1
            while pollAt < truth {
                pollAt += scheduler.delayAfterMiss(uploads: 200, misses: polls).secondsDouble
                polls += 1
            }
            #expect(polls == expected)
        }
    }

    @Test func adaptiveIsTheDefault() {
        #expect(PollScheduler().strategy == .adaptive)
    }
}
