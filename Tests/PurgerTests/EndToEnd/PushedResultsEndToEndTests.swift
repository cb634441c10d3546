import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import ServiceLifecycle
import Testing

/// The worker with pushed job results: the mock cluster, the simulator's HTTP API and its Pusher websocket.
@Suite("Pushed results end to end", .serialized, .timeLimit(.minutes(5)))
struct PushedResultsEndToEndTests {
    static func simulator(push: SimulatorPush) -> SimulatorConfiguration {
        var configuration = PipelineFixture.fastSimulator(uploads: 10_000)
        configuration.push = push
        return configuration
    }

    static func pushClient(_ fixture: PipelineFixture, jobResults: JobResultSource) -> CMAClient {
        var configuration = fixture.client().configuration
        configuration.jobResults = jobResults
        configuration.pushURL = CMASimulator.pushURL(baseURL: fixture.baseURL)
        return CMAClient(configuration: configuration, logger: quietLogger)
    }

    @Test func droppedEventsAndReconnectionsLoseNothingAndCountsStayExact() async throws {
        // A tenth of the events never sent, and the connection closed every second.
        let fixture = try await PipelineFixture(
            simulator: Self.simulator(push: SimulatorPush(dropEvents: 0.1, closeEvery: .seconds(1))))
        let (values, ids, requests) = PipelineEndToEndTests.generateRequests(count: 3_000, fixture: fixture)
        let producer = try fixture.producer()
        try await fixture.produce(values, with: producer)
        let group = "purger-\(UUID())"
        let client = Self.pushClient(fixture, jobResults: .auto)
        let worker = fixture.worker(try fixture.settings(group: group, maxWait: .milliseconds(50)), client: client)
        let expected = requests.count
        let (messages, failure) = try await withRunningWorker(worker) {
            try await fixture.read(fixture.resultsTopic) { messages in
                Set(messages.flatMap { (try? ReadEvent($0))?.requests.map(\.request_id) ?? [] }).count >= expected
            }
        }
        #expect(failure == nil)
        let events = try messages.map(ReadEvent.init)
        #expect(events.allSatisfy { $0.status == "completed" && $0.counts == "exact" })
        #expect(events.allSatisfy { $0.successful + $0.not_found + $0.failed == $0.requested })
        for environment in [nil, "staging"] as [String?] {
            let reported = Set(events.filter { $0.environment == environment }.flatMap(\.upload_ids))
            #expect(reported == Set(ids[environment]!.map(\.rawValue)))
            let successful = events.filter { $0.environment == environment }.reduce(0) { $0 + $1.successful }
            #expect(successful == fixture.simulator.deletedUploadIDs(environment: environment).count)
        }
        let stats = fixture.simulator.stats()
        #expect(stats.doubleDeletions == 0)
        #expect(stats.pushEventsDropped > 0, "the fault was exercised")
        #expect(client.statistics.pushedResults > 0, "results came by push")
        let figures = client.statistics
        print(
            "pushed results with faults: jobs \(stats.jobsStarted), results pushed \(figures.pushedResults), "
                + "polled \(figures.jobsFinished - figures.pushedResults), polls \(figures.polls), events dropped "
                + "\(stats.pushEventsDropped), API requests \(figures.totalRequests)")
        let consumed = try await fixture.read(fixture.requestsTopic) { $0.count >= values.count }
        let committed = try await fixture.committedOffsets(group: group)
        for (partition, end) in fixture.endOffsets(of: consumed) {
            #expect(committed[partition] == .some(end), "partition \(partition) committed to its end")
        }
        await producer.close()
        await fixture.simulator.shutdown()
    }

    /// A graceful shutdown reaches every task under the worker's service, and swift-websocket closes its connection
    /// on one: the drain would then poll every job it awaits. The push connection stays until the drain is over.
    @Test func thePushConnectionOutlivesTheDrainThatAwaitsItsResults() async throws {
        let fixture = try await PipelineFixture(simulator: Self.simulator(push: SimulatorPush()))
        // One request, so one batch: what the drain awaits is all of it.
        let uploads = Array(fixture.simulator.uploadIDs(environment: nil).prefix(30))
        let producer = try fixture.producer()
        try await fixture.produce([requestJSON(id: "r", uploads: uploads, environment: nil)], with: producer)
        let group = "purger-\(UUID())"
        let client = Self.pushClient(fixture, jobResults: .push)
        var settings = try fixture.settings(group: group, maxWait: .milliseconds(50))
        settings.configuration.jobResults = .push
        // Held jobs do not finish: the drain certainly awaits one.
        fixture.simulator.holdJobs()
        let running = RunningWorker(fixture.worker(settings, client: client))
        #expect(await eventually { fixture.simulator.heldJobCount > 0 && fixture.simulator.pushSubscriberCount == 1 })
        await running.triggerShutdown()
        let draining = await eventually {
            running.worker.assignedPartitionCount > 0
                && running.worker.pausedPartitionCount == running.worker.assignedPartitionCount
        }
        #expect(draining, "the drain started")
        #expect(running.worker.inFlightCount > 0, "the drain awaits a held job")
        #expect(fixture.simulator.pushSubscriberCount == 1, "the push connection is still subscribed")
        fixture.simulator.releaseJobs()
        let ended = await running.ended(within: .seconds(60))
        #expect(ended?.succeeded == true)
        let everyID = Set(uploads.map(\.rawValue))
        let events = try await fixture.read(fixture.resultsTopic) { messages in
            Set(messages.flatMap { (try? ReadEvent($0))?.upload_ids ?? [] }) == everyID
        }
        #expect(Set(try events.map(ReadEvent.init).flatMap(\.upload_ids)) == everyID, "the drain reported every id")
        #expect(
            await eventually { fixture.simulator.pushSubscriberCount == 0 }, "the connection closed after the drain")
        await producer.close()
        await fixture.simulator.shutdown()
    }

    @Test func pushRequiredButUnavailableStopsTheWorkerBeforeAnyWork() async throws {
        let fixture = try await PipelineFixture(simulator: Self.simulator(push: SimulatorPush(enabled: false)))
        let uploads = Array(fixture.simulator.uploadIDs(environment: nil).prefix(10))
        let producer = try fixture.producer()
        try await fixture.produce([requestJSON(id: "r", uploads: uploads, environment: nil)], with: producer)
        var settings = try fixture.settings(group: "purger-\(UUID())")
        settings.configuration.jobResults = .push
        let worker = fixture.worker(settings, client: Self.pushClient(fixture, jobResults: .push))
        do {
            try await worker.run()
            Issue.record("the worker ran without push")
        } catch let error as WorkerError {
            guard case .pushUnavailable = error else {
                Issue.record("stopped for another reason: \(error)")
                return
            }
        }
        // Whatever ran before the check failed, nothing unreported was committed.
        let committed = try await fixture.committedOffsets(group: settings.configuration.kafkaGroupID)
        let reported = try await fixture.readAll(fixture.resultsTopic).count
        #expect(committed.values.allSatisfy { ($0 ?? 0) == 0 || reported > 0 }, "\(committed)")
        await producer.close()
        await fixture.simulator.shutdown()
    }
}
