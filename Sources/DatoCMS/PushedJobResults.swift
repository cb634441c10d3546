import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

/// Job results pushed by DatoCMS over Pusher: one websocket, kept subscribed to the channels of the environments
/// jobs are submitted to, and a mailbox that hands each job its result.
///
/// The protocol is ``PushConnectionStateMachine``'s; this class only opens the socket (hummingbird-websocket's
/// client), sends, asks the CMA for channel signatures and wakes the jobs waiting. A result may arrive before its
/// job is registered (the POST's answer and the event race): it is kept for ``earlyResultLifetime``. Results of
/// jobs nobody here waits for (other replicas share the channel) are dropped then.
final class PushedJobResults: Sendable {
    /// What wakes a job waiting for its result.
    enum Signal: Sendable, Equatable {
        /// Its result arrived (at that instant).
        case result(PushedJobResult, at: ContinuousClock.Instant)
        /// Its channel was subscribed again after a gap: events of the gap are lost, poll once.
        case resubscribed
        /// Its channel is not subscribed any more: poll until it is.
        case lost
    }

    /// How long a result nobody waits for yet is kept.
    static let earlyResultLifetime: Duration = .seconds(120)
    /// The most results kept for jobs not registered (other replicas' jobs fill it).
    static let earlyResultCapacity = 10_000
    /// How often the connection's timers are looked at.
    static let tickInterval: Duration = .milliseconds(200)

    private struct Waiter {
        var channel: String
        var signals: [Signal] = []
        var continuation: CheckedContinuation<[Signal], Never>?
    }

    private struct State {
        var machine: PushConnectionStateMachine
        var running = false
        var waiters: [JobID: Waiter] = [:]
        var early: [JobID: (PushedJobResult, ContinuousClock.Instant)] = [:]
        var subscriptionWaiters: [String: [CheckedContinuation<Bool, Never>]] = [:]
        /// Channels some job has waited for already.
        var attempted: Set<String> = []
        /// Connections seen established, for counting reconnections.
        var connectionsSeen = 0
    }

    enum Input: Sendable {
        case want(String)
        case opened(WebSocketOutboundWriter)
        case received(String)
        case closed(code: Int?)
        case authorized(channel: String, auth: String, socketID: String)
        case authorizationFailed(channel: String, reason: String)
        case tick
    }

    let url: String
    private let logger: Logger
    private let state: Mutex<State>
    private let inputs: AsyncStream<Input>
    private let input: AsyncStream<Input>.Continuation
    private let clock = ContinuousClock()

    /// - Parameter url: the full websocket URL, e.g. `wss://ws-mt1.pusher.com/app/KEY?protocol=7&…`.
    init(url: String, configuration: PushConnectionStateMachine.Configuration = .init(), logger: Logger) {
        self.url = url
        self.logger = logger
        self.state = Mutex(State(machine: PushConnectionStateMachine(configuration: configuration, now: .now)))
        (inputs, input) = AsyncStream.makeStream(of: Input.self)
    }

    // MARK: - For jobs

    /// Whether `channel` is subscribed now.
    func isSubscribed(_ channel: String) -> Bool {
        state.withLock { $0.machine.isSubscribed(channel) }
    }

    /// Makes sure `channel` is subscribed, waiting up to `timeout`; `false` when push cannot serve it (not running,
    /// refused, given up, or not subscribed in time): its jobs are polled then.
    func subscribe(_ channel: String, timeout: Duration) async -> Bool {
        enum Now { case yes, no, notYet, wait }
        let now = state.withLock { state -> Now in
            guard state.running, !state.machine.hasGivenUp else { return .no }
            switch state.machine.channels[channel] {
            case .subscribed: return .yes
            case .refused: return .no
            default:
                // Only the first job of a channel waits for it; while it is being (re)subscribed, later ones are
                // polled rather than held back.
                return state.attempted.insert(channel).inserted ? .wait : .notYet
            }
        }
        switch now {
        case .yes: return true
        case .no: return false
        case .notYet:
            input.yield(.want(channel))
            return false
        case .wait: break
        }
        input.yield(.want(channel))
        let deadline = clock.now + timeout
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(until: deadline, clock: ContinuousClock())
                self.settleSubscriptionWaiters(channel, subscribed: false)
            }
            let subscribed = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let answer = state.withLock { state -> Bool? in
                        if state.machine.isSubscribed(channel) { return true }
                        if case .refused = state.machine.channels[channel] { return false }
                        if !state.running || state.machine.hasGivenUp || Task.isCancelled || clock.now >= deadline {
                            return false
                        }
                        state.subscriptionWaiters[channel, default: []].append(continuation)
                        return nil
                    }
                    if let answer { continuation.resume(returning: answer) }
                }
            } onCancel: {
                self.settleSubscriptionWaiters(channel, subscribed: false)
            }
            group.cancelAll()
            let refused = state.withLock { state in
                if case .refused = state.machine.channels[channel] { return true }
                return state.machine.hasGivenUp
            }
            if !subscribed, !refused {
                // Once per channel (a refusal has said so already): later jobs of it do not wait, and are polled until it is subscribed.
                logger.warning(
                    "Push channel not subscribed in time; its job results are polled until it is",
                    metadata: ["channel": "\(channel)", "timeout": "\(timeout)"])
            }
            return subscribed
        }
    }

    /// Starts keeping results for `job` of `channel`; a result that came before is handed at the first ``next``.
    func register(_ job: JobID, channel: String) {
        state.withLock { state in
            var waiter = Waiter(channel: channel)
            if let (result, at) = state.early.removeValue(forKey: job) {
                waiter.signals.append(.result(result, at: at))
            }
            state.waiters[job] = waiter
        }
    }

    /// Stops keeping results for `job`.
    func unregister(_ job: JobID) {
        let continuation = state.withLock { $0.waiters.removeValue(forKey: job)?.continuation }
        continuation?.resume(returning: [])
    }

    /// Waits until something happens to `job` or `deadline` passes (then `[]`); returns at once when cancelled.
    func next(_ job: JobID, until deadline: ContinuousClock.Instant) async -> [Signal] {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(until: deadline, clock: ContinuousClock())
                self.wake(job)
            }
            let signals = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> [Signal]? in
                        guard var waiter = state.waiters[job] else { return [] }
                        // Signals waiting, or nothing left to wake it: the timer may have fired before this
                        // continuation was stored (past the deadline), or the task is cancelled.
                        if !waiter.signals.isEmpty || Task.isCancelled || clock.now >= deadline {
                            defer { waiter.signals = []; state.waiters[job] = waiter }
                            return waiter.signals
                        }
                        waiter.continuation = continuation
                        state.waiters[job] = waiter
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                self.wake(job)
            }
            group.cancelAll()
            return signals
        }
    }

    // MARK: - Running

    /// Keeps the connection until cancelled. `authorize` signs a channel for a socket (the CMA's
    /// `POST /pusher/authenticate`).
    func run(
        authorize: @escaping @Sendable (_ socketID: String, _ channel: String) async throws(CMAError) -> String
    ) async {
        state.withLock { $0.running = true }
        defer { stop() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while (try? await Task.sleep(for: Self.tickInterval)) != nil { self.input.yield(.tick) }
            }
            var outbound: WebSocketOutboundWriter?
            self.input.yield(.tick)
            for await event in inputs {
                if Task.isCancelled { break }
                let now = clock.now
                let actions = state.withLock { state -> [PushConnectionStateMachine.Action] in
                    switch event {
                    case .want(let channel): return state.machine.want(channel, at: now)
                    case .opened(let writer):
                        outbound = writer
                        return []
                    case .received(let text): return state.machine.received(text, at: now)
                    case .closed(let code):
                        outbound = nil
                        return state.machine.closed(code: code, at: now)
                    case .authorized(let channel, let auth, let socketID):
                        return state.machine.authorized(channel: channel, auth: auth, socketID: socketID, at: now)
                    case .authorizationFailed(let channel, let reason):
                        return state.machine.authorizationFailed(channel: channel, reason: reason, at: now)
                    case .tick:
                        expireEarlyResults(&state, now: now)
                        return state.machine.tick(at: now)
                    }
                }
                for action in actions {
                    switch action {
                    case .connect:
                        group.addTask { await self.connect() }
                    case .send(let text):
                        try? await outbound?.write(.text(text))
                    case .close:
                        try? await outbound?.close(.normalClosure, reason: nil)
                    case .authorize(let socketID, let channel):
                        group.addTask {
                            do throws(CMAError) {
                                let auth = try await authorize(socketID, channel)
                                self.input.yield(.authorized(channel: channel, auth: auth, socketID: socketID))
                            } catch {
                                self.input.yield(.authorizationFailed(channel: channel, reason: "\(error)"))
                            }
                        }
                    case .deliver(let result):
                        deliver(result, at: now)
                    case .subscribed(let channel):
                        subscribed(channel)
                    case .channelRefused(let channel, let reason):
                        logger.warning(
                            "Push channel unavailable; its job results are polled",
                            metadata: ["channel": "\(channel)", "reason": "\(reason)"])
                        settleSubscriptionWaiters(channel, subscribed: false)
                        signalAll(.lost, channel: channel)
                    case .channelsLost(let reason):
                        logger.info("Push connection lost; polling until it is back", metadata: ["reason": "\(reason)"])
                        CMAMetrics.recordPushConnection(up: false)
                        signalAll(.lost, channel: nil)
                    case .giveUp(let reason):
                        logger.warning("Push unavailable; job results are polled", metadata: ["reason": "\(reason)"])
                        CMAMetrics.recordPushConnection(up: false)
                        signalAll(.lost, channel: nil)
                        settleAllSubscriptionWaiters()
                    }
                }
            }
            try? await outbound?.close(.goingAway, reason: nil)
            group.cancelAll()
        }
    }

    /// Opens the socket and reads it until it closes; reports every frame and the close as inputs.
    private func connect() async {
        var code: Int?
        do {
            let frame = try await WebSocketClient.connect(url: url, logger: logger) { inbound, outbound, _ in
                self.input.yield(.opened(outbound))
                for try await message in inbound.messages(maxSize: 8 << 20) {
                    if case .text(let text) = message { self.input.yield(.received(text)) }
                }
            }
            if let frame { code = Int(UInt16(webSocketErrorCode: frame.closeCode)) }
        } catch {
            logger.debug("Push connection failed", metadata: ["error": "\(error)"])
        }
        input.yield(.closed(code: code))
    }

    // MARK: - Waking jobs

    private func deliver(_ result: PushedJobResult, at now: ContinuousClock.Instant) {
        let continuation = state.withLock { state -> (CheckedContinuation<[Signal], Never>, [Signal])? in
            guard var waiter = state.waiters[result.job] else {
                if state.early.count < Self.earlyResultCapacity { state.early[result.job] = (result, now) }
                return nil
            }
            waiter.signals.append(.result(result, at: now))
            return take(&waiter, job: result.job, in: &state)
        }
        if let (continuation, signals) = continuation { continuation.resume(returning: signals) }
    }

    private func subscribed(_ channel: String) {
        let (waiters, reconnected) = state.withLock { state in
            let reconnected = state.connectionsSeen > 0 && state.machine.connections > state.connectionsSeen
            state.connectionsSeen = state.machine.connections
            return (state.subscriptionWaiters.removeValue(forKey: channel) ?? [], reconnected)
        }
        if reconnected { CMAMetrics.recordPushReconnect() }
        CMAMetrics.recordPushConnection(up: true)
        for waiter in waiters { waiter.resume(returning: true) }
        signalAll(.resubscribed, channel: channel)
    }

    /// Adds `signal` to every waiter (of `channel`, or all) and wakes those asleep.
    private func signalAll(_ signal: Signal, channel: String?) {
        let woken = state.withLock { state -> [(CheckedContinuation<[Signal], Never>, [Signal])] in
            var woken: [(CheckedContinuation<[Signal], Never>, [Signal])] = []
            for (job, var waiter) in state.waiters where channel == nil || waiter.channel == channel {
                waiter.signals.append(signal)
                if let taken = take(&waiter, job: job, in: &state) { woken.append(taken) }
            }
            return woken
        }
        for (continuation, signals) in woken { continuation.resume(returning: signals) }
    }

    /// Wakes `job` with whatever it has (perhaps nothing).
    private func wake(_ job: JobID) {
        let taken = state.withLock { state -> (CheckedContinuation<[Signal], Never>, [Signal])? in
            guard var waiter = state.waiters[job] else { return nil }
            return take(&waiter, job: job, in: &state)
        }
        if let (continuation, signals) = taken { continuation.resume(returning: signals) }
    }

    /// Takes a sleeping waiter's continuation and signals, storing the rest back; `nil` when it is not asleep
    /// (the signals stay for its next ``next(_:until:)``).
    private func take(
        _ waiter: inout Waiter, job: JobID, in state: inout State
    ) -> (CheckedContinuation<[Signal], Never>, [Signal])? {
        guard let continuation = waiter.continuation else {
            state.waiters[job] = waiter
            return nil
        }
        let signals = waiter.signals
        waiter.signals = []
        waiter.continuation = nil
        state.waiters[job] = waiter
        return (continuation, signals)
    }

    private func settleSubscriptionWaiters(_ channel: String, subscribed: Bool) {
        let waiters = state.withLock { $0.subscriptionWaiters.removeValue(forKey: channel) ?? [] }
        for waiter in waiters { waiter.resume(returning: subscribed) }
    }

    private func settleAllSubscriptionWaiters() {
        let waiters = state.withLock { state in
            defer { state.subscriptionWaiters = [:] }
            return state.subscriptionWaiters.values.flatMap { $0 }
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    private func expireEarlyResults(_ state: inout State, now: ContinuousClock.Instant) {
        guard !state.early.isEmpty else { return }
        state.early = state.early.filter { $0.value.1 + Self.earlyResultLifetime > now }
    }

    /// After `run` ends: no channel serves jobs any more; everything waiting is told.
    private func stop() {
        state.withLock { $0.running = false }
        settleAllSubscriptionWaiters()
        signalAll(.lost, channel: nil)
    }
}
