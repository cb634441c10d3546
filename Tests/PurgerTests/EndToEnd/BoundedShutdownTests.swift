import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM ends `upload-purger run` within `PURGER_SHUTDOWN_TIMEOUT_S` plus its documented margin (the last commit,
/// 5 s at most, and leaving the group, 5 s at most) whatever is down, and never stores an offset past unfinished
/// work; a second SIGTERM stops at once.
@Suite("Bounded shutdown", .serialized, .timeLimit(.minutes(5)))
struct BoundedShutdownTests {
    /// `PURGER_SHUTDOWN_TIMEOUT_S` of these runs.
    static let budget = 3
    /// The budget, the documented margin (10 s) and slack for a loaded machine: a worker that ignores the budget
    /// takes minutes (retry deadlines, delivery timeouts), far beyond this.
    static let limit: Duration = .seconds(budget + 10 + 10)

    enum Fault: String, CaseIterable, Sendable {
        case apiRefusesConnections, apiNeverAnswers, brokersDown
    }

    /// Starts `run`, waits until it logs that it started, sends SIGTERM and measures how long it takes to end.
    static func stop(
        environment: [String: String], whenStarted: () async throws -> Void = {}
    ) async throws -> (status: Int32?, seconds: Double, stderr: String) {
        let worker = try WorkerProcess(arguments: ["run"], environment: environment)
        #expect(await eventually(timeout: .seconds(60)) { worker.stderr.contains("Worker started") })
        try await whenStarted()
        let signalled = ContinuousClock.now
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(120))
        if status == nil { worker.signal(SIGKILL) }
        return (status, (ContinuousClock.now - signalled).secondsValue, worker.stderr)
    }

    @Test(arguments: Fault.allCases) func sigtermAtStartUpEndsWithinTheBudget(_ fault: Fault) async throws {
        let fixture = try await PipelineFixture()
        let silent = try SilentListener()
        var environment = fixture.processEnvironment(group: "shutdown-\(UUID())", httpPort: 0)
        environment["PURGER_SHUTDOWN_TIMEOUT_S"] = "\(Self.budget)"
        switch fault {
        case .apiRefusesConnections: environment["DATOCMS_BASE_URL"] = "http://127.0.0.1:\(try refusingPort())"
        case .apiNeverAnswers: environment["DATOCMS_BASE_URL"] = "http://127.0.0.1:\(silent.port)"
        case .brokersDown: environment["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:\(try refusingPort())"
        }
        let stopped = try await Self.stop(environment: environment)
        print(
            "SIGTERM at start-up, \(fault.rawValue): exit \(stopped.status.map(String.init) ?? "none") after \(stopped.seconds) s"
        )
        #expect(stopped.status == 0, "\(stopped.stderr.suffix(2000))")
        #expect(stopped.seconds < Self.limit.secondsValue, "ended \(stopped.seconds) s after SIGTERM")
        await fixture.simulator.shutdown()
    }

    enum APIFault: String, CaseIterable, Sendable {
        case refusesConnections, neverAnswers
    }

    @Test(arguments: APIFault.allCases)
    func sigtermMidRunWithTheAPIDownEndsWithinTheBudgetAndStoresNothingUnfinished(_ fault: APIFault) async throws {
        let (fixture, group, environment) = try await Self.midRun(budget: Self.budget)
        let stopped = try await Self.stop(environment: environment) {
            try await Self.waitForWork(fixture)
            // Jobs are in flight, and from now on no request gets an answer.
            switch fault {
            case .refusesConnections: await fixture.simulator.shutdown()
            case .neverAnswers: fixture.simulator.stopAnswering()
            }
        }
        print(
            "SIGTERM mid-run, API \(fault.rawValue): exit \(stopped.status.map(String.init) ?? "none") after "
                + "\(stopped.seconds) s")
        #expect(stopped.status == 0, "\(stopped.stderr.suffix(2000))")
        #expect(stopped.seconds < Self.limit.secondsValue, "ended \(stopped.seconds) s after SIGTERM")
        try await Self.expectNothingUnfinishedCommitted(group: group, fixture: fixture)
        await fixture.simulator.shutdown()
    }

    @Test func sigtermMidRunWithTheBrokersDownEndsWithinTheBudgetAndStoresNothingUnfinished() async throws {
        let (fixture, group, environment) = try await Self.midRun(budget: Self.budget)
        let stopped = try await Self.stop(environment: environment) {
            try await Self.waitForWork(fixture)
            for broker in Int32(1)...3 { try fixture.cluster.setBrokerDown(broker) }
        }
        print(
            "SIGTERM mid-run, brokers down: exit \(stopped.status.map(String.init) ?? "none") after \(stopped.seconds) s"
        )
        #expect(stopped.status == 0, "\(stopped.stderr.suffix(2000))")
        #expect(stopped.seconds < Self.limit.secondsValue, "ended \(stopped.seconds) s after SIGTERM")
        for broker in Int32(1)...3 { try fixture.cluster.setBrokerUp(broker) }
        try await Self.expectNothingUnfinishedCommitted(group: group, fixture: fixture)
        await fixture.simulator.shutdown()
    }

    @Test func aSecondSigtermDuringTheDrainStopsAtOnceAndStoresNothingUnfinished() async throws {
        let (fixture, group, environment) = try await Self.midRun(budget: 300)
        let worker = try WorkerProcess(arguments: ["run"], environment: environment)
        try await Self.waitForWork(fixture)
        // Held jobs never finish: the drain would last its whole budget.
        #expect(await eventually(timeout: .seconds(60)) { fixture.simulator.heldJobCount > 0 })
        worker.signal(SIGTERM)
        #expect(await eventually(timeout: .seconds(30)) { worker.stderr.contains("Signal received; draining") })
        let signalled = ContinuousClock.now
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(120))
        let seconds = (ContinuousClock.now - signalled).secondsValue
        if status == nil { worker.signal(SIGKILL) }
        print("second SIGTERM during the drain: exit \(status.map(String.init) ?? "none") after \(seconds) s")
        #expect(status == 1, "a stop that did not drain is not a clean one")
        #expect(worker.stderr.contains("stopped at once on a second signal"))
        #expect(seconds < 20, "ended \(seconds) s after the second SIGTERM")
        try await Self.expectNothingUnfinishedCommitted(group: group, fixture: fixture)
        await fixture.simulator.shutdown()
    }

    // MARK: - Helpers

    /// A fixture with 600 requests waiting, and the environment of a worker for them with `budget` seconds to drain.
    static func midRun(budget: Int) async throws -> (PipelineFixture, String, [String: String]) {
        let fixture = try await PipelineFixture(
            simulator: PipelineFixture.fastSimulator(jobBaseDuration: .milliseconds(200)))
        let group = "shutdown-\(UUID())"
        try await produceRequests(600, fixture: fixture)
        var environment = fixture.processEnvironment(group: group, httpPort: 0)
        environment["PURGER_SHUTDOWN_TIMEOUT_S"] = "\(budget)"
        environment["PURGER_BATCH_MAX_SIZE"] = "20"
        // The first four jobs finish (one completion event each, which `waitForWork` waits for); every later one
        // is held, so the worker is mid-run for certain when the test acts, however fast pushed results end the
        // jobs (30 jobs of 200 ms end in about a second).
        fixture.simulator.holdJobs(after: 4)
        return (fixture, group, environment)
    }

    /// Waits until the worker has published three completion events (one per job): it is mid-run, with more work
    /// in flight (held by the simulator).
    static func waitForWork(_ fixture: PipelineFixture) async throws {
        _ = try await fixture.read(fixture.resultsTopic) { $0.count >= 3 }
    }

    static func produceRequests(_ count: Int, fixture: PipelineFixture) async throws {
        let uploads = distinctUploads(fixture, count: count)
        let producer = try fixture.producer()
        try await fixture.produce(
            (0..<count).map { requestJSON(id: "stop-\($0)", uploads: [uploads[$0]], environment: nil) }, with: producer)
        await producer.close()
    }

    /// Every request below the group's committed offset of its partition is reported in a completion event.
    static func expectNothingUnfinishedCommitted(group: String, fixture: PipelineFixture) async throws {
        let committed = try await fixture.committedOffsets(group: group)
        let results = try await fixture.readAll(fixture.resultsTopic)
        var reported: [TopicPartition: Set<Int64>] = [:]
        for event in try results.map(ReadEvent.init) {
            for request in event.requests {
                reported[TopicPartition(topic: request.topic, partition: request.partition), default: []].insert(
                    request.offset)
            }
        }
        for (partition, offset) in committed {
            guard let offset else { continue }
            let unreported = (0..<offset).filter { !(reported[partition]?.contains($0) ?? false) }
            #expect(
                unreported.isEmpty,
                "\(partition) committed to \(offset) past unreported offsets \(unreported.prefix(5))")
        }
    }
}

/// A port nothing listens on: bound, then closed, so connections to it are refused.
func refusingPort() throws -> Int {
    let (descriptor, port) = try SilentListener.bindLoopback()
    close(descriptor)
    return port
}

/// A TCP listener on loopback that never accepts: the kernel completes connections into its backlog, and no
/// request ever gets an answer.
final class SilentListener: Sendable {
    let port: Int
    private let descriptor: Int32

    struct Failure: Error { var call: String }

    init() throws {
        (descriptor, port) = try Self.bindLoopback()
    }

    deinit { close(descriptor) }

    /// A listening socket on 127.0.0.1 at a free port.
    static func bindLoopback() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(call: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 128) == 0
                    && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard ready else {
            close(descriptor)
            throw Failure(call: "bind, listen or getsockname")
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }
}

extension Duration {
    /// The duration in seconds.
    fileprivate var secondsValue: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
