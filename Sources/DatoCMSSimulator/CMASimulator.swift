public import DatoCMS
import Hummingbird
import HummingbirdWebSocket
public import Logging
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The DatoCMS Content Management API subset used by upload-purger, as a real HTTP server with fault injection.
///
/// Serves `POST /uploads/bulk/destroy`, `GET /job-results/:id`, `GET /uploads` with the documented headers, status
/// codes and error documents, plus `GET /_simulator/stats`. Start it in-process with ``start()`` (port 0 picks a free
/// port) and stop it with ``shutdown()``, or run it until cancelled with ``run()``.
public final class CMASimulator: Sendable {
    /// The configuration in use.
    public let configuration: SimulatorConfiguration
    private let logger: Logger
    private let state: Mutex<SimulatorState>
    private let pushHub: PushHub
    private let server = Mutex<(task: Task<Void, Never>?, baseURL: String?)>((nil, nil))

    /// A simulator with freshly seeded uploads; nothing is bound until ``start()`` or ``run()``.
    public init(configuration: SimulatorConfiguration, logger: Logger) {
        NIOTypeMetadata.instantiate()
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(SimulatorState(configuration: configuration))
        self.pushHub = PushHub(configuration: configuration.push, seed: configuration.seed, logger: logger)
    }

    /// Errors starting the server.
    public struct StartError: Error, CustomStringConvertible {
        /// Why it failed.
        public var description: String
    }

    /// Binds and serves in the background; returns the base URL, e.g. `http://127.0.0.1:54321`.
    public func start() async throws -> String {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            do {
                try await self.serve { port in continuation.yield(port) }
            } catch {
                self.logger.error("Simulator stopped", metadata: ["error": "\(error)"])
            }
            continuation.finish()
        }
        server.withLock { $0.task = task }
        for await port in ports {
            let url = "http://\(configuration.host):\(port)"
            server.withLock { $0.baseURL = url }
            return url
        }
        throw StartError(description: "simulator could not bind \(configuration.host):\(configuration.port)")
    }

    /// Stops a server started with ``start()`` and waits until it is down, or 2 s at most: Hummingbird's server can
    /// wait on a websocket connection a client left half open, and then it is left to end with the process.
    public func shutdown() async {
        pushHub.closeAll()
        let task = server.withLock { state in
            defer { state.task = nil }
            return state.task
        }
        guard let task else { return }
        task.cancel()
        final class Once: Sendable {
            let done = Mutex(false)
            func first() -> Bool {
                done.withLock { done in
                    defer { done = true }; return !done
                }
            }
        }
        let once = Once()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Task {
                await task.value
                if once.first() { continuation.resume() }
            }
            Task {
                try? await Task.sleep(for: .seconds(2))
                if once.first() { continuation.resume() }
            }
        }
    }

    /// Serves until the surrounding task is cancelled or, in a service group, until graceful shutdown, which
    /// lets the server finish open requests and return normally (for the `simulator` command).
    /// `onListening` receives the base URL once the server is bound.
    public func run(onListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        try await serve { port in
            let url = "http://\(self.configuration.host):\(port)"
            self.server.withLock { $0.baseURL = url }
            self.logger.info("CMA simulator listening", metadata: ["port": "\(port)"])
            onListening(url)
        }
    }

    /// The base URL once the server is listening.
    public var baseURL: String? { server.withLock { $0.baseURL } }

    /// `DATOCMS_PUSH_URL` for a simulator listening at `baseURL`: the same port serves Pusher's websocket.
    public static func pushURL(baseURL: String) -> String { "ws" + baseURL.dropFirst("http".count) }

    /// Seeded upload ids of an environment (`nil` = primary), deleted ones included, in seed order.
    public func uploadIDs(environment: String?) -> [UploadID] {
        state.withLock { $0.seededIDs[environment] ?? [] }
    }

    /// Seeded ids used by records: their deletion fails.
    public func inUseUploadIDs(environment: String?) -> Set<UploadID> {
        state.withLock { $0.inUse[environment] ?? [] }
    }

    /// Ids that still exist in an environment.
    public func existingUploadIDs(environment: String?) -> Set<UploadID> {
        state.withLock { $0.existing[environment] ?? [] }
    }

    /// Ids deleted so far in an environment.
    public func deletedUploadIDs(environment: String?) -> Set<UploadID> {
        state.withLock { $0.deleted[environment] ?? [] }
    }

    /// Holds every job started from now on: it does not finish (its result stays 404) until ``releaseJobs()``. For
    /// tests that need jobs in flight as a certainty rather than a chance.
    public func holdJobs() {
        holdJobs(after: 0)
    }

    /// Lets the next `count` jobs run as usual and holds every job started after them, as ``holdJobs()`` does: a
    /// test that waits for the first results then has jobs in flight for certain, however fast results arrive.
    public func holdJobs(after count: Int) {
        state.withLock { $0.holdFromJob = $0.stats.jobsStarted + count }
    }

    /// Multiplies the duration of every job started from now on by `factor` (an API that slows down mid-run).
    public func setJobDurationFactor(_ factor: Double) {
        state.withLock { $0.jobDurationFactor = max(factor, 0.01) }
    }

    /// Lets held jobs finish (each once its duration has passed) and stops holding new ones.
    public func releaseJobs() {
        state.withLock { $0.releaseJobs() }
    }

    /// From now on, takes every request and answers none: an API behind a proxy that hangs, for tests of what
    /// waits on it.
    public func stopAnswering() {
        state.withLock { $0.silenced = true }
    }

    /// Open push connections subscribed to at least one channel.
    public var pushSubscriberCount: Int { pushHub.subscribedConnections }

    /// Jobs held and not released.
    public var heldJobCount: Int { state.withLock { $0.heldJobs } }

    /// A snapshot of the statistics (jobs whose time has come are settled first).
    public func stats() -> SimulatorStats {
        let now = ContinuousClock.now
        return state.withLock { $0.snapshot(at: now) }
    }

    // MARK: - Server

    private func serve(onPort: @escaping @Sendable (Int) -> Void) async throws {
        let router = Router(context: SimulatorRequestContext.self)
        router.post("/uploads/bulk/destroy") { request, context in
            await self.respond(to: request, route: .bulkDestroy, context: context)
        }
        router.get("/job-results/:id") { request, context in
            await self.respond(
                to: request, route: .jobResult(context.parameters.get("id") ?? ""), context: context)
        }
        router.get("/uploads") { request, context in
            await self.respond(to: request, route: .uploads, context: context)
        }
        router.get("/site") { request, context in
            await self.respond(to: request, route: .site, context: context)
        }
        router.post("/pusher/authenticate") { request, context in
            await self.respond(to: request, route: .pusherAuthenticate, context: context)
        }
        router.get("/_simulator/stats") { _, _ in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(self.stats())) ?? Data()
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: Array(body))))
        }
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .warning)
        let push = configuration.push
        let hub = pushHub
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade { request, channel, _ in
                // Pusher's path: /app/{key}?protocol=7&…; anything else is served by the router.
                guard push.enabled, let path = request.path,
                    path.split(separator: "?").first == "/app/\(push.appKey)"
                else { return .dontUpgrade }
                return .upgrade([:]) { inbound, outbound, _ in
                    await hub.serve(inbound: inbound, outbound: outbound, channel: channel)
                }
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { onPort(port) }
            },
            logger: serverLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            if push.enabled {
                group.addTask { await self.publishJobResults() }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Pushes the results of jobs as they finish: settles due jobs every few milliseconds (the simulator settles
    /// lazily otherwise) and hands their events to the hub.
    private func publishJobResults() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let events = state.withLock { state in
                state.settleJobs(at: now)
                return state.takePushEvents()
            }
            let (delivered, dropped) = pushHub.publish(events, at: now)
            if !delivered.isEmpty || dropped > 0 {
                state.withLock { state in
                    for job in delivered { state.notePushed(job, at: now) }
                    state.stats.pushEventsDropped += dropped
                }
            }
            guard (try? await Task.sleep(for: .milliseconds(5))) != nil else { return }
        }
    }

    private func respond(
        to request: Request, route: SimulatedRequest.Route, context: SimulatorRequestContext
    ) async -> Response {
        // A silenced API takes every request and answers none (until the server stops).
        while state.withLock({ $0.silenced }) {
            guard (try? await Task.sleep(for: .milliseconds(50))) != nil else { break }
        }
        var body: [UInt8] = []
        if route.hasBody {
            var request = request
            if let buffer = try? await request.collectBody(upTo: 1 << 20) {
                body = Array(buffer.readableBytesView)
            }
        }
        let simulated = SimulatedRequest(
            route: route,
            authorization: request.headers[.authorization],
            apiVersion: request.headers.value(named: "X-Api-Version"),
            environment: request.headers.value(named: "X-Environment"),
            contentType: request.headers[.contentType],
            query: Self.parseQuery(request.uri.query),
            body: body)
        let now = ContinuousClock.now
        let (refusal, slow) = state.withLock { state in
            let refusal = state.admit(simulated, at: now)
            return (refusal, refusal == nil && state.isSlow())
        }
        if let refusal { return Self.response(refusal) }
        if slow {
            try? await Task.sleep(for: configuration.faults.slowResponseDelay)
        }
        let later = ContinuousClock.now
        let simulatedResponse = state.withLock { $0.handle(simulated, at: later) }
        if simulatedResponse.dropConnection {
            context.closeConnection()
        }
        return Self.response(simulatedResponse)
    }

    private static func response(_ simulated: SimulatedResponse) -> Response {
        var headers: HTTPFields = [.contentType: simulated.contentType]
        for (name, value) in simulated.headers {
            headers.setValue(value, named: name)
        }
        return Response(
            status: .init(code: simulated.status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: simulated.body)))
    }

    /// Splits a raw query string, percent-decoding keys and values (`filter%5Bids%5D` and `filter[ids]` alike).
    static func parseQuery(_ query: String?) -> [String: String] {
        guard let query, !query.isEmpty else { return [:] }
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = percentDecode(parts[0])
            result[key] = parts.count > 1 ? percentDecode(parts[1]) : ""
        }
        return result
    }

    private static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Hummingbird request context that can drop the connection (the lost-response fault).
struct SimulatorRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let closeConnection: @Sendable () -> Void

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        let channel = source.channel
        self.closeConnection = { channel.close(promise: nil) }
    }
}

extension HTTPFields {
    /// The value of a field named by a string (the field-name type is not re-exported by Hummingbird).
    func value(named name: String) -> String? {
        Element.Name(name).flatMap { self[$0] }
    }

    mutating func setValue(_ value: String, named name: String) {
        if let name = Element.Name(name) { self[name] = value }
    }
}
