import DatoCMS
import Testing

@Suite struct PollSchedulerTests {
    struct Simulation {
        var polls = 0
        var jobs = 0
        var delayRatios: [Double] = []
    }

    /// Runs jobs with known true durations through the scheduler on a virtual clock, `concurrency` at a time: the
    /// first `concurrency` jobs are submitted together (a backlog at start) and each finished job frees its slot for
    /// the next. Every poll goes out up to `lateness` seconds after it was due (a congested rate limiter).
    func simulate(
        _ scheduler: inout PollScheduler, jobs: Int, concurrency: Int = 1, sizes: [Int], base: Double,
        perUpload: Double, jitter: Double, lateness: Double = 0, seed: UInt64
    ) -> Simulation {
        struct Job {
            var size: Int
            var truth: Double
            var submittedAt: Double
            var planned: Duration
            var pollAt: Double
            var misses = 0
            var lastMiss: Double?
            var polls = 0
        }
        var random = TestRandom(state: seed)
        var result = Simulation()
        var submitted = 0
        func submit(at now: Double) -> Job {
            let size = sizes[submitted % sizes.count]
            submitted += 1
            let truth = (base + perUpload * Double(size)) * (1 + Double.random(in: -jitter...jitter, using: &random))
            let planned = scheduler.firstPollDelay(uploads: size)
            let late = lateness > 0 ? Double.random(in: 0...lateness, using: &random) : 0
            return Job(
                size: size, truth: truth, submittedAt: now, planned: planned, pollAt: now + planned.secondsDouble + late
            )
        }
        var active = (0..<min(concurrency, jobs)).map { _ in submit(at: 0) }
        while let index = active.indices.min(by: { active[$0].pollAt < active[$1].pollAt }) {
            var job = active[index]
            let now = job.pollAt
            let elapsed = now - job.submittedAt
            job.polls += 1
            if elapsed >= job.truth {
                scheduler.recordCompletion(
                    uploads: job.size, plannedFirstPoll: job.planned, lastMissAt: job.lastMiss.map { .seconds($0) },
                    foundAt: .seconds(elapsed))
                result.polls += job.polls
                result.jobs += 1
                result.delayRatios.append((elapsed - job.truth) / job.truth)
                if submitted < jobs {
                    active[index] = submit(at: now)
                } else {
                    active.remove(at: index)
                }
            } else {
                job.misses += 1
                job.lastMiss = elapsed
                let backoff = scheduler.delayAfterMiss(
                    uploads: job.size, misses: job.misses, elapsed: .seconds(elapsed))
                let late = lateness > 0 ? Double.random(in: 0...lateness, using: &random) : 0
                job.pollAt = now + backoff.secondsDouble + late
                active[index] = job
            }
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

    /// A backlog at start: eight jobs submitted at once, all planned on the 3 s prior while jobs take 1.5 s. The
    /// eight hits lower the guess once by 30 % (not eight times), so the next wave is not polled absurdly early.
    @Test func aBacklogOfJobsPlannedAlikeLowersThePriorOnce() {
        var scheduler = PollScheduler()
        let planned = scheduler.firstPollDelay(uploads: 200)
        for _ in 0..<8 {
            scheduler.recordCompletion(uploads: 200, plannedFirstPoll: planned, lastMissAt: nil, foundAt: planned)
        }
        let lowered = scheduler.predictedDuration(uploads: 200).secondsDouble
        #expect(abs(lowered - planned.secondsDouble * 0.7) < 0.001, "lowered to \(lowered) s")
    }

    /// The bench's shape: jobs of 200 ids taking 1.5 s ± 10 %, eight in flight from a backlog, 120 jobs in all
    /// (the first ones on the prior): the whole run, warm-up included, stays within 1.3 polls per job.
    @Test func aBacklogEightAtATimeIncludingWarmUp() {
        var scheduler = PollScheduler()
        let run = simulate(
            &scheduler, jobs: 120, concurrency: 8, sizes: [200], base: 0.5, perUpload: 0.005, jitter: 0.1, seed: 11)
        let pollsPerJob = Double(run.polls) / Double(run.jobs)
        let steady = run.delayRatios.suffix(60)
        let meanDelay = steady.reduce(0, +) / Double(steady.count)
        #expect(run.jobs == 120)
        #expect(pollsPerJob <= 1.3, "polls per job: \(pollsPerJob)")
        #expect(meanDelay <= 0.2, "mean notice delay of the last 60 jobs: \(meanDelay)")
    }

    /// Polls that wait up to a second for a congested rate limiter find most jobs finished however early they were
    /// planned. Such late hits must not drag the prediction down (they did: it fell from 3 s to 30 ms, and the
    /// next jobs then missed six or seven times each).
    @Test func latePollsDoNotTeachItToPollEarlier() {
        var scheduler = PollScheduler()
        let run = simulate(
            &scheduler, jobs: 200, concurrency: 8, sizes: [200], base: 0.5, perUpload: 0.005, jitter: 0.1,
            lateness: 1.0, seed: 12)
        let pollsPerJob = Double(run.polls) / Double(run.jobs)
        let predicted = scheduler.predictedDuration(uploads: 200).secondsDouble
        #expect(pollsPerJob <= 1.3, "polls per job: \(pollsPerJob)")
        #expect(predicted > 1.0 && predicted < 3.0, "predicted \(predicted) s for jobs of 1.5 s")
    }

    /// Jobs of 25 ids taking 0.2 s, four at a time; then the API holds one wave of four for 20 s; then 0.2 s again.
    /// The stalled jobs must not become the plan: after the stall, jobs are still polled about once each and noticed
    /// soon (before, the line learned 20 s and every later job was found ~20 s late, for hundreds of jobs).
    @Test func aStallOfOneWaveIsNotLearnedAsTheDuration() {
        var scheduler = PollScheduler()
        _ = simulate(
            &scheduler, jobs: 100, concurrency: 4, sizes: [25], base: 0.15, perUpload: 0.002, jitter: 0.1, seed: 21)
        let before = scheduler.predictedDuration(uploads: 25).secondsDouble
        let stall = simulate(
            &scheduler, jobs: 4, concurrency: 4, sizes: [25], base: 20, perUpload: 0, jitter: 0.01, seed: 22)
        #expect(stall.jobs == 4)
        let after = simulate(
            &scheduler, jobs: 200, concurrency: 4, sizes: [25], base: 0.15, perUpload: 0.002, jitter: 0.1, seed: 23)
        let pollsPerJob = Double(after.polls) / Double(after.jobs)
        let meanDelay = after.delayRatios.reduce(0, +) / Double(after.jobs)
        let predicted = scheduler.predictedDuration(uploads: 25).secondsDouble
        print("after a stall: \(pollsPerJob) polls per job, notice delay \(meanDelay), predicted \(predicted) s")
        #expect(pollsPerJob <= 1.3, "polls per job after the stall: \(pollsPerJob)")
        #expect(meanDelay <= 0.3, "mean notice delay after the stall: \(meanDelay)")
        #expect(predicted < before * 2, "predicted \(predicted) s after the stall, \(before) s before")
    }

    /// A worker started while the API stalls: its first wave of jobs is held 20 s, before anything was learned.
    @Test func aStallBeforeAnythingWasLearnedIsNotLearnedEither() {
        var scheduler = PollScheduler()
        _ = simulate(&scheduler, jobs: 4, concurrency: 4, sizes: [25], base: 20, perUpload: 0, jitter: 0.01, seed: 27)
        let after = simulate(
            &scheduler, jobs: 200, concurrency: 4, sizes: [25], base: 0.15, perUpload: 0.002, jitter: 0.1, seed: 28)
        let steady = after.delayRatios.suffix(100)
        let meanDelay = steady.reduce(0, +) / Double(steady.count)
        let predicted = scheduler.predictedDuration(uploads: 25).secondsDouble
        print(
            "stall at start: \(after.polls) polls for \(after.jobs) jobs, notice delay \(meanDelay), predicted \(predicted) s"
        )
        #expect(Double(after.polls) / Double(after.jobs) <= 1.3)
        #expect(meanDelay <= 0.3, "mean notice delay of the last 100 jobs: \(meanDelay)")
        #expect(predicted < 0.5, "predicted \(predicted) s for jobs of 0.2 s")
    }

    /// A lasting slowdown is still learned: jobs go from 0.5 s to 5 s and stay there.
    @Test func aLastingSlowdownIsLearned() {
        var scheduler = PollScheduler()
        _ = simulate(
            &scheduler, jobs: 100, concurrency: 4, sizes: [100], base: 0.3, perUpload: 0.002, jitter: 0.1, seed: 24)
        let slow = simulate(
            &scheduler, jobs: 200, concurrency: 4, sizes: [100], base: 4.0, perUpload: 0.01, jitter: 0.1, seed: 25)
        let settled = simulate(
            &scheduler, jobs: 200, concurrency: 4, sizes: [100], base: 4.0, perUpload: 0.01, jitter: 0.1, seed: 26)
        let predicted = scheduler.predictedDuration(uploads: 100).secondsDouble
        let meanDelay = settled.delayRatios.reduce(0, +) / Double(settled.jobs)
        print(
            "slowdown: \(slow.polls) polls for \(slow.jobs) jobs adapting, \(settled.polls) settled, delay \(meanDelay)"
        )
        #expect(Double(slow.polls) / Double(slow.jobs) <= 2, "polls per job while adapting: \(slow.polls)")
        #expect(Double(settled.polls) / Double(settled.jobs) <= 1.3, "polls per job once adapted: \(settled.polls)")
        #expect(meanDelay <= 0.2, "mean notice delay once adapted: \(meanDelay)")
        #expect(predicted > 4.0 && predicted < 7.0, "predicted \(predicted) s for jobs of 5 s")
    }

    @Test func backsOffBrieflyAndIncreasinglyAfterMissesOnceWarmedUp() {
        var scheduler = PollScheduler()
        scheduler.recordCompletion(
            uploads: 100, plannedFirstPoll: .seconds(1), lastMissAt: .seconds(1), foundAt: .seconds(1.2))
        let predicted = scheduler.predictedDuration(uploads: 100)
        let first = scheduler.delayAfterMiss(uploads: 100, misses: 1, elapsed: predicted)
        let second = scheduler.delayAfterMiss(uploads: 100, misses: 2, elapsed: predicted + first)
        #expect(first < predicted)
        #expect(second == first * 2)
        #expect(
            scheduler.delayAfterMiss(uploads: 100, misses: 40, elapsed: .seconds(60))
                == scheduler.configuration.maximumBackoff)
    }

    /// Before any job has missed, the prediction was a guess that proved too short: search upwards in steps of a
    /// quarter of the elapsed time.
    @Test func beforeTheFirstMissTheNextPollsGoAQuarterOfTheElapsedTimeApart() {
        let scheduler = PollScheduler()
        #expect(scheduler.delayAfterMiss(uploads: 200, misses: 1, elapsed: .milliseconds(800)) == .milliseconds(200))
        #expect(
            scheduler.delayAfterMiss(uploads: 200, misses: 1, elapsed: .milliseconds(1))
                == scheduler.configuration.minimumBackoff)
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
                #expect(
                    scheduler.delayAfterMiss(uploads: uploads, misses: misses, elapsed: .seconds(misses))
                        == .seconds(1))
            }
        }
    }

    @Test func learningDoesNotChangeTheLinearSchedule() {
        var scheduler = PollScheduler(strategy: .linear(step: .milliseconds(1500)))
        for _ in 0..<50 {
            scheduler.recordCompletion(
                uploads: 200, plannedFirstPoll: .milliseconds(1500), lastMissAt: .seconds(3), foundAt: .seconds(4.5))
            scheduler.recordCompletion(
                uploads: 5, plannedFirstPoll: .milliseconds(1500), lastMissAt: nil, foundAt: .seconds(1.5))
        }
        #expect(scheduler.firstPollDelay(uploads: 200) == .milliseconds(1500))
        #expect(scheduler.delayAfterMiss(uploads: 200, misses: 3, elapsed: .seconds(4.5)) == .milliseconds(1500))
    }

    /// A job of true duration d is found by poll ⌈d / step⌉, so the official schedule costs about one poll per second
    /// of job time.
    @Test func costsOnePollPerStepOfJobTime() {
        let scheduler = PollScheduler(strategy: .linear(step: .seconds(1)))
        for (truth, expected) in [(0.8, 1), (1.8, 2), (4.2, 5)] {
            var pollAt = scheduler.firstPollDelay(uploads: 200).secondsDouble
            var polls = 1
            while pollAt < truth {
                pollAt += scheduler.delayAfterMiss(uploads: 200, misses: polls, elapsed: .seconds(pollAt)).secondsDouble
                polls += 1
            }
            #expect(polls == expected)
        }
    }

    @Test func adaptiveIsTheDefault() {
        #expect(PollScheduler().strategy == .adaptive)
    }
}
