import DatoCMS
import DatoCMSSimulator
import Testing

/// Pushed job results end to end: the client against the simulator's Pusher websocket and HTTP API over loopback.
@Suite struct PushedJobResultsTests {
    static func pushClient(baseURL: String, jobResults: JobResultSource = .auto) -> CMAClient {
        var configuration = Harness.clientConfiguration(baseURL: baseURL)
        configuration.jobResults = jobResults
        configuration.pushURL = "ws" + baseURL.dropFirst(4)
        return CMAClient(configuration: configuration, logger: Harness.logger)
    }

    static func simulator(push: SimulatorPush, uploads: Int = 400) -> SimulatorConfiguration {
        var configuration = Harness.simulatorConfiguration(uploads: uploads, inUse: 0.1)
        configuration.push = push
        return configuration
    }

    /// Deletes `batches` batches of `size` ids of the primary environment at once while the push connection runs;
    /// returns the outcomes.
    static func destroy(
        _ client: CMAClient, _ simulator: CMASimulator, batches: Int, size: Int, environment: String? = nil
    ) async throws -> [BulkDestroyOutcome] {
        let ids = simulator.uploadIDs(environment: environment)
        return try await withThrowingTaskGroup(of: BulkDestroyOutcome?.self) { group in
            group.addTask {
                await client.runPushedResults()
                return nil
            }
            // Subscribed first, as the worker does at start-up, so the batches below find the channel ready.
            _ = try await client.subscribePushChannel(environment: environment)
            var outcomes: [BulkDestroyOutcome] = []
            await withThrowingTaskGroup(of: BulkDestroyOutcome.self) { jobs in
                for batch in 0..<batches {
                    let slice = Array(ids[(batch * size)..<((batch + 1) * size)])
                    jobs.addTask { try await client.destroyUploads(slice, environment: environment) }
                }
                while let outcome = try? await jobs.next() { outcomes.append(outcome) }
            }
            group.cancelAll()
            return outcomes
        }
    }

    /// Every outcome exact and consistent with the simulator: nothing lost, nothing counted twice.
    static func expectExact(_ outcomes: [BulkDestroyOutcome], batches: Int, _ simulator: CMASimulator) {
        #expect(outcomes.count == batches)
        #expect(outcomes.allSatisfy { $0.status == .completed && $0.counts == .exact })
        #expect(outcomes.allSatisfy { $0.deleted + $0.notFound + $0.stillPresent == $0.requested })
        let stats = simulator.stats()
        #expect(outcomes.reduce(0) { $0 + $1.deleted } == stats.deletions)
        #expect(stats.doubleDeletions == 0)
    }

    @Test func resultsArriveByPushAndCostNoPoll() async throws {
        try await Harness.withSimulator(Self.simulator(push: .init())) { simulator, url in
            let client = Self.pushClient(baseURL: url)
            let outcomes = try await Self.destroy(client, simulator, batches: 8, size: 40)
            Self.expectExact(outcomes, batches: 8, simulator)
            let statistics = client.statistics
            #expect(statistics.jobsFinished == 8)
            // Jobs last 40 ms and the safety net polls after a second at the earliest: push comes first unless
            // the machine stalls for that second; whichever came, each job finished once.
            #expect(statistics.pushedResults >= 1)
            #expect(statistics.requests["site"]?["200"] == 1, "the site id is read once")
            #expect(statistics.requests["pusher_authenticate"]?["200"] == 1, "one channel, one connection")
            #expect(simulator.stats().pushedResults == statistics.pushedResults)
        }
    }

    @Test func droppedEventsAndClosedConnectionsAreCoveredByPolls() async throws {
        let push = SimulatorPush(dropEvents: 0.3, closeEvery: .milliseconds(700), closeCode: 4200)
        try await Harness.withSimulator(Self.simulator(push: push, uploads: 800)) { simulator, url in
            let client = Self.pushClient(baseURL: url)
            let ids = simulator.uploadIDs(environment: nil)
            let outcomes = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.runPushedResults() }
                _ = try await client.subscribePushChannel(environment: nil)
                var outcomes: [BulkDestroyOutcome] = []
                // Waves of jobs, so that some run across a reconnection.
                for wave in 0..<3 {
                    outcomes += try await withThrowingTaskGroup(of: BulkDestroyOutcome.self) { jobs in
                        for batch in 0..<8 {
                            let start = wave * 240 + batch * 30
                            jobs.addTask {
                                try await client.destroyUploads(Array(ids[start..<(start + 30)]), environment: nil)
                            }
                        }
                        var done: [BulkDestroyOutcome] = []
                        while let outcome = try await jobs.next() { done.append(outcome) }
                        return done
                    }
                }
                group.cancelAll()
                return outcomes
            }
            Self.expectExact(outcomes, batches: 24, simulator)
            #expect(client.statistics.jobsFinished == 24)
            #expect(simulator.stats().pushEventsDropped > 0, "the fault was exercised")
        }
    }

    @Test func withoutAWebsocketAutoFallsBackToPolling() async throws {
        try await Harness.withSimulator(Self.simulator(push: .init(enabled: false))) { simulator, url in
            let client = Self.pushClient(baseURL: url)
            let outcomes = try await Self.destroy(client, simulator, batches: 4, size: 50)
            Self.expectExact(outcomes, batches: 4, simulator)
            #expect(client.statistics.pushedResults == 0)
            #expect(client.statistics.polls >= 4)
        }
    }

    @Test func refusedAuthorizationFallsBackToPolling() async throws {
        try await Harness.withSimulator(Self.simulator(push: .init(refuseAuthorization: true))) { simulator, url in
            let client = Self.pushClient(baseURL: url, jobResults: .push)
            let outcomes = try await Self.destroy(client, simulator, batches: 2, size: 50)
            Self.expectExact(outcomes, batches: 2, simulator)
            #expect(client.statistics.pushedResults == 0)
            #expect(client.statistics.requests["pusher_authenticate"]?["403"] == 1, "refused once, not per job")
        }
    }

    @Test func aResultTooLargeToPushIsFetched() async throws {
        try await Harness.withSimulator(Self.simulator(push: .init(payloadTooLargeAbove: 30))) { simulator, url in
            let client = Self.pushClient(baseURL: url)
            let outcomes = try await Self.destroy(client, simulator, batches: 4, size: 40)
            Self.expectExact(outcomes, batches: 4, simulator)
            #expect(client.statistics.pushedResults == 0)
            #expect(client.statistics.polls >= 4)
        }
    }

    @Test func eachEnvironmentHasItsOwnChannel() async throws {
        try await Harness.withSimulator(Self.simulator(push: .init())) { simulator, url in
            let client = Self.pushClient(baseURL: url)
            let outcomes = try await Self.destroy(client, simulator, batches: 3, size: 30, environment: "staging")
            Self.expectExact(outcomes, batches: 3, simulator)
            #expect(
                CMAClient.pushChannelName(site: "31337", environment: "staging")
                    == "private-site-31337-environment-staging")
            #expect(simulator.stats().uploadsLeft["primary"] == 400)
        }
    }
}
