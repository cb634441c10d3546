import DatoCMS
import DatoCMSSimulator
import Testing

@Suite struct CMAClientTests {
    @Test func deletesUploadsAndReportsExactCounts() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration()) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: nil).prefix(150))
            let outcome = try await client.destroyUploads(ids + ids.prefix(10), environment: nil)
            #expect(outcome.status == .completed)
            #expect(outcome.requested == 150)
            #expect(outcome.deleted == 150)
            #expect(outcome.stillPresent == 0)
            #expect(outcome.stillPresentIDs == [])
            #expect(outcome.jobIDs.count == 1)
            #expect(outcome.jobStatus == 200)
            #expect(outcome.attempts == 1)
            #expect(outcome.polls >= 1)
            #expect(outcome.error == nil)
            #expect(simulator.existingUploadIDs(environment: nil).isDisjoint(with: ids))
            #expect(simulator.stats().deletions == 150)
            #expect(simulator.uploadIDs(environment: "staging").count == 400)
            #expect(simulator.existingUploadIDs(environment: "staging").count == 400, "other environment untouched")
        }
    }

    @Test func deletesInTheRequestedEnvironment() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration()) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: "staging").prefix(20))
            let outcome = try await client.destroyUploads(ids, environment: "staging")
            #expect(outcome.deleted == 20)
            #expect(simulator.stats().uploadsLeft == ["primary": 400, "staging": 380])
        }
    }

    @Test func splitsMoreThanTwoHundredIdsIntoSeveralJobs() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration()) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: nil).prefix(350))
            let outcome = try await client.destroyUploads(ids, environment: nil)
            #expect(outcome.jobIDs.count == 2)
            #expect(outcome.deleted == 350)
            #expect(outcome.attempts == 2)
        }
    }

    @Test func tellsDeletedNotFoundAndStillPresentApart() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration(inUse: 0.2)) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: nil).prefix(100))
            let inUse = simulator.inUseUploadIDs(environment: nil).intersection(ids)
            #expect(!inUse.isEmpty)
            let unknown = ["AAAAAAAAAAAAAAAAAAAAAA", "999999999999999"].compactMap(UploadID.init(validating:))

            let first = try await client.destroyUploads(ids, environment: nil)
            #expect(first.status == .completed)
            #expect(first.deleted == ids.count - inUse.count)
            #expect(first.notFound == 0)
            #expect(first.stillPresent == inUse.count)
            #expect(first.stillPresentIDs.map(Set.init) == inUse, "the lookup names the in-use ids")
            #expect(first.counts == .exact)
            #expect(Set(first.goneIDs) == Set(ids).subtracting(inUse))
            #expect(first.lookups == 1)

            // The same ids again, with two that never existed: the deleted ones and the unknown ones are not found.
            let again = try await client.destroyUploads(ids + unknown, environment: nil)
            #expect(again.deleted == 0)
            #expect(again.notFound == ids.count - inUse.count + unknown.count)
            #expect(again.stillPresent == inUse.count)
            #expect(again.stillPresentIDs.map(Set.init) == inUse)
            #expect(again.counts == .exact)
        }
    }

    @Test func idsAnotherClientDeletesMeanwhileAreNotFound() async throws {
        var configuration = Harness.simulatorConfiguration(inUse: 0.1)
        configuration.externalDeletionsPerSecond = 200
        try await Harness.withSimulator(configuration) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            for batch in 0..<4 {
                let ids = Array(all[(batch * 50)..<(batch * 50 + 50)])
                let outcome = try await client.destroyUploads(ids, environment: nil)
                let existing = simulator.existingUploadIDs(environment: nil)
                let named = try #require(outcome.stillPresentIDs)
                #expect(outcome.counts == .exact)
                #expect(outcome.deleted + outcome.notFound + outcome.stillPresent == 50)
                #expect(existing.isSuperset(of: named), "the ids named still present are there")
                #expect(existing.intersection(ids) == Set(named), "the others are gone")
                let byJobs = simulator.stats().jobs.filter { outcome.jobIDs.map(\.rawValue).contains($0.id) }
                #expect(outcome.deleted == byJobs.reduce(0) { $0 + $1.deleted })
            }
            #expect(simulator.stats().externalDeletions > 0)
        }
    }

    @Test func idsKnownGoneAreNotFoundWithoutARequest() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration()) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: nil).prefix(30))
            let skipped = try await client.destroyUploads(ids, environment: nil, knownGone: Set(ids))
            #expect(skipped.status == .completed)
            #expect(skipped.notFound == 30)
            #expect(skipped.deleted == 0)
            #expect(skipped.counts == .exact)
            #expect(skipped.jobIDs.isEmpty)
            #expect(skipped.submittedAt == nil)
            #expect(client.statistics.totalRequests == 0)
            #expect(simulator.existingUploadIDs(environment: nil).isSuperset(of: ids), "nothing was sent")

            let mixed = try await client.destroyUploads(ids, environment: nil, knownGone: Set(ids.prefix(10)))
            #expect(mixed.notFound == 10)
            #expect(mixed.deleted == 20)
            #expect(simulator.stats().jobs.map(\.uploads) == [20])
        }
    }

    @Test func rejectedTokenIsFatal() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration()) { simulator, url in
            let client = CMAClient(
                configuration: Harness.clientConfiguration(baseURL: url, token: "wrong"), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: nil).prefix(5))
            let error = await #expect(throws: CMAError.self) {
                _ = try await client.destroyUploads(ids, environment: nil)
            }
            #expect(error?.kind == .fatal)
            #expect(error?.httpStatus == 401)
            #expect(error?.code == "INVALID_AUTHORIZATION_HEADER")
            #expect(error.map { !"\($0)".contains("wrong") } ?? false)
            await #expect(throws: CMAError.self) { try await client.ping(environment: nil) }
            #expect(simulator.stats().jobsStarted == 0)
        }
    }

    @Test func pingProvesTheTokenWorks() async throws {
        try await Harness.withSimulator(Harness.simulatorConfiguration()) { _, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            try await client.ping(environment: nil)
            let error = await #expect(throws: CMAError.self) { try await client.ping(environment: "nope") }
            #expect(error?.kind == .rejected)
            #expect(error?.code == "INVALID_ENVIRONMENT")
        }
    }

    @Test func retriesServerErrorsAndTransientErrors() async throws {
        let faults = SimulatorFaults(serverError500Html: 0.2, unavailable503Transient: 0.2)
        try await Harness.withSimulator(Harness.simulatorConfiguration(inUse: 0.1, faults: faults)) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            let inUse = simulator.inUseUploadIDs(environment: nil)
            for batch in 0..<5 {
                let ids = Array(all[(batch * 40)..<(batch * 40 + 40)])
                let outcome = try await client.destroyUploads(ids, environment: nil)
                #expect(outcome.status == .completed)
                #expect(outcome.stillPresent == inUse.intersection(ids).count)
                #expect(outcome.deleted + outcome.notFound + outcome.stillPresent == 40)
            }
            let stats = simulator.stats()
            #expect(stats.faultsInjected["server_error_500_html", default: 0] > 0)
            #expect(stats.faultsInjected["unavailable_503", default: 0] > 0)
            #expect(client.statistics.retries > 0)
            #expect(stats.doubleDeletions == 0)
        }
    }

    /// One operation after another, so that no request is in flight when a 429 arrives: every request that reaches
    /// the simulator before the reset has passed was then sent after the client saw the 429. (With operations side
    /// by side, one already granted may arrive after the 429 was sent but before the client read it; how long that
    /// takes depends on the machine's load, so such a test would be flaky. That the block holds for every task of
    /// the client is the rate limiter's own test.)
    @Test func sendsNothingBeforeA429ResetHasPassed() async throws {
        let faults = SimulatorFaults(loadShedding429: 0.3, loadSheddingResetSeconds: 1)
        try await Harness.withSimulator(Harness.simulatorConfiguration(faults: faults)) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            // 16 operations of at least 2 requests each (the POST and a poll): the chance that none meets a 429 is
            // below 0.7^32 = 1e-5.
            for batch in 0..<16 {
                let outcome = try await client.destroyUploads(
                    Array(all[(batch * 25)..<(batch * 25 + 25)]), environment: nil)
                #expect(outcome.status == .completed)
                #expect(outcome.deleted == 25)
            }
            let stats = simulator.stats()
            #expect(stats.rateLimited > 0)
            #expect(stats.requestsBeforeReset == 0)
            #expect(client.statistics.rateLimited == stats.rateLimited)
        }
    }

    @Test func lostPostResponsesGiveExactCountsWithoutDeletingTwice() async throws {
        let faults = SimulatorFaults(lostPostResponse: 0.3)
        try await Harness.withSimulator(Harness.simulatorConfiguration(inUse: 0.15, faults: faults)) {
            simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            let inUse = simulator.inUseUploadIDs(environment: nil)
            for batch in 0..<6 {
                let ids = Array(all[(batch * 50)..<(batch * 50 + 50)])
                let outcome = try await client.destroyUploads(ids, environment: nil)
                let deleted = simulator.deletedUploadIDs(environment: nil).intersection(ids)
                #expect(outcome.status == .completed)
                #expect(outcome.deleted + outcome.notFound == deleted.count)
                #expect(outcome.deleted <= deleted.count)
                #expect(outcome.stillPresent == inUse.intersection(ids).count)
                #expect(outcome.deleted + outcome.notFound + outcome.stillPresent == 50)
                if let named = outcome.stillPresentIDs { #expect(Set(named) == inUse.intersection(ids)) }
            }
            let stats = simulator.stats()
            #expect(stats.lostResponses > 0)
            #expect(client.statistics.lostSubmissions == stats.lostResponses)
            #expect(stats.doubleDeletions == 0)
            #expect(stats.deletions == simulator.deletedUploadIDs(environment: nil).count)
        }
    }

    /// Responses slower than the client's request timeout: polls and lookups are retried; a timed-out submission may
    /// still start its job on the server (the simulator processes the request after its delay, or at once when the
    /// client hangs up), so it is recovered like a lost response: counts stay exact and nothing is deleted twice.
    @Test func responsesSlowerThanTheRequestTimeoutKeepCountsExact() async throws {
        let faults = SimulatorFaults(slowResponse: 0.3, slowResponseDelay: .milliseconds(400))
        try await Harness.withSimulator(Harness.simulatorConfiguration(inUse: 0.15, faults: faults)) {
            simulator, url in
            let client = CMAClient(
                configuration: Harness.clientConfiguration(baseURL: url, requestTimeout: .milliseconds(150)),
                logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            let inUse = simulator.inUseUploadIDs(environment: nil)
            // 20 submissions, each slow with probability 0.3: the chance that none times out is 0.08 %.
            for batch in 0..<20 {
                let ids = Array(all[(batch * 20)..<(batch * 20 + 20)])
                let lostBefore = client.statistics.lostSubmissions
                let outcome = try await client.destroyUploads(ids, environment: nil)
                if client.statistics.lostSubmissions > lostBefore {
                    // The job of a timed-out submission may still be running: let it finish before comparing.
                    try await Task.sleep(for: .milliseconds(500))
                }
                let deleted = simulator.deletedUploadIDs(environment: nil).intersection(ids)
                #expect(outcome.status == .completed)
                #expect(outcome.deleted + outcome.notFound == deleted.count)
                #expect(outcome.deleted <= deleted.count)
                #expect(outcome.stillPresent == inUse.intersection(ids).count)
                #expect(outcome.deleted + outcome.notFound + outcome.stillPresent == 20)
            }
            let stats = simulator.stats()
            #expect(client.statistics.lostSubmissions > 0)
            #expect(client.statistics.retries > 0)
            #expect(stats.doubleDeletions == 0)
            #expect(stats.deletions == simulator.deletedUploadIDs(environment: nil).count)
        }
    }

    @Test func resubmitsWhatRemainsAfterAJobFailsWith500() async throws {
        let faults = SimulatorFaults(failedJob500: 0.4)
        try await Harness.withSimulator(Harness.simulatorConfiguration(faults: faults)) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            for batch in 0..<5 {
                let ids = Array(all[(batch * 20)..<(batch * 20 + 20)])
                let outcome = try await client.destroyUploads(ids, environment: nil)
                #expect(outcome.deleted + outcome.notFound + outcome.stillPresent == 20)
                #expect(
                    outcome.deleted + outcome.notFound
                        == simulator.deletedUploadIDs(environment: nil).intersection(ids).count)
            }
            #expect(simulator.stats().faultsInjected["failed_job_500", default: 0] > 0)
        }
    }

    @Test func bisectionIsolatesTheRefusedIdAndDeletesTheRest() async throws {
        let seedIDs = CMASimulator(configuration: Harness.simulatorConfiguration(), logger: Harness.logger)
            .uploadIDs(environment: nil)
        let refused = seedIDs[11]
        try await Harness.withSimulator(Harness.simulatorConfiguration(refused: [refused.rawValue])) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let ids = Array(simulator.uploadIDs(environment: nil).prefix(32))
            #expect(ids.contains(refused))
            let outcome = try await client.destroyUploads(ids, environment: nil)
            #expect(outcome.status == .completed)
            #expect(outcome.deleted == 31)
            #expect(outcome.stillPresent == 1)
            #expect(outcome.stillPresentIDs == [refused])
            #expect(simulator.existingUploadIDs(environment: nil).intersection(ids) == [refused])
            #expect(client.statistics.bisections >= 5)

            let alone = try await client.destroyUploads([refused], environment: nil)
            #expect(alone.status == .rejected)
            #expect(alone.stillPresent == 1)
            #expect(alone.error?.hasPrefix("INVALID_FIELD") == true)
        }
    }

    @Test func twoClientsSharingOneTokenStayUnderTheLimit() async throws {
        let limit = RateLimit(requests: 20, window: .seconds(1))
        try await Harness.withSimulator(Harness.simulatorConfiguration(uploads: 600, rateLimit: limit)) {
            simulator, url in
            let clients = (0..<2).map { _ in
                CMAClient(
                    configuration: Harness.clientConfiguration(baseURL: url, rateLimit: limit), logger: Harness.logger)
            }
            let all = simulator.uploadIDs(environment: nil)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<24 {
                    let client = clients[index % 2]
                    let ids = Array(all[(index * 20)..<(index * 20 + 20)])
                    group.addTask { try await client.destroyUploads(ids, environment: nil).deleted }
                }
                var total = 0
                for try await successful in group { total += successful }
                #expect(total == 480)
            }
            let stats = simulator.stats()
            #expect(stats.maxRequestsInWindow <= 20, "max requests in a window: \(stats.maxRequestsInWindow)")
            #expect(stats.rateLimited == 0, "429s: \(stats.rateLimited)")
        }
    }

    @Test func pollsAboutOncePerJobAndNoticesCompletionPromptly() async throws {
        var configuration = Harness.simulatorConfiguration(uploads: 3500)
        configuration.jobBaseDuration = .milliseconds(150)
        configuration.jobPerUploadDuration = .milliseconds(1)
        try await Harness.withSimulator(configuration) { simulator, url in
            let client = CMAClient(configuration: Harness.clientConfiguration(baseURL: url), logger: Harness.logger)
            let all = simulator.uploadIDs(environment: nil)
            let sizes = [50, 10, 30, 20]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for stream in 0..<3 {
                    group.addTask {
                        var start = stream * 1100
                        for index in 0..<40 {
                            let size = sizes[index % sizes.count]
                            _ = try await client.destroyUploads(Array(all[start..<(start + size)]), environment: nil)
                            start += size
                        }
                    }
                }
                try await group.waitForAll()
            }
            let stats = simulator.stats()
            let measured = stats.jobs.suffix(72)
            let polls = Double(measured.reduce(0) { $0 + $1.polls }) / Double(measured.count)
            let delays = measured.compactMap { job in
                job.noticedAfterSeconds.map { ($0 - job.durationSeconds) / job.durationSeconds }
            }
            let meanDelay = delays.reduce(0, +) / Double(delays.count)
            print(
                "simulator after warm-up: polls/job \(polls), mean notice delay \(meanDelay);"
                    + " all \(stats.jobs.count) jobs: polls/job \(stats.pollsPerNoticedJob),"
                    + " mean notice delay \(stats.meanNoticeDelayRatio)")
            #expect(delays.count == measured.count, "every job's result was noticed")
            // The figures (1.15–1.22 polls per job, notice delays near 0.1 of the job's duration on a quiet machine)
            // belong to the bench; these bounds only catch a scheduler gone wrong (polling far too often, or
            // noticing results a whole job late), not a loaded machine's timing.
            #expect(meanDelay <= 1.0, "mean notice delay after warm-up: \(meanDelay) of the job's duration")
            #expect(polls <= 2.0, "polls per job after warm-up: \(polls)")
        }
    }
}
