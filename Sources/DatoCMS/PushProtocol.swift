#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The client side of the Pusher protocol (version 7) as DatoCMS uses it for job results: pure, time passed in.
///
/// DatoCMS publishes every finished job as a `job-result` event on the private channel of its site (or of one of
/// its sandbox environments). This machine keeps one connection subscribed to the channels it is asked for:
///
/// - The server opens with `pusher:connection_established` (a socket id and an activity timeout); every wanted
///   channel is then authorized (by the shell, with the CMA token) and subscribed with `pusher:subscribe`; the
///   server confirms with `pusher_internal:subscription_succeeded` or refuses with `pusher:subscription_error`.
/// - Without traffic for the activity timeout it sends `pusher:ping`; without an answer ``Configuration/pongTimeout``
///   later it closes the connection, which is then reconnected.
/// - A close (or `pusher:error`) with a code in 4000–4099 means "do not reconnect": the machine gives up and job
///   results are polled. 4100–4199 reconnect after a back-off, 4200–4299 at once, anything else (a network error,
///   a normal close) after a back-off. Every reconnection gets a new socket id, so every channel is re-authorized.
/// - Pusher keeps nothing: events published while a channel is not subscribed are lost. The machine therefore says
///   when every channel is lost (``Action/channelsLost``) and when one is subscribed again
///   (``Action/subscribed(_:)``); the shell polls the jobs that were pending in between.
public struct PushConnectionStateMachine: Sendable {
    /// Timings of the connection.
    public struct Configuration: Sendable, Equatable {
        /// Longest silence before a ping, whatever the server announces. pusher-js uses 120 s.
        public var maximumActivityTimeout: Duration
        /// How long a ping may go unanswered before the connection is closed and reconnected. pusher-js: 30 s.
        public var pongTimeout: Duration
        /// First back-off before a reconnection; doubles per failed attempt.
        public var initialBackoff: Duration
        /// Longest back-off.
        public var maximumBackoff: Duration
        /// How long a connection attempt may take to be established (the socket opened and the server's
        /// `pusher:connection_established` received) before it counts as failed.
        public var connectTimeout: Duration

        /// The defaults are pusher-js's where it has one.
        public init(
            maximumActivityTimeout: Duration = .seconds(120), pongTimeout: Duration = .seconds(30),
            initialBackoff: Duration = .seconds(1), maximumBackoff: Duration = .seconds(30),
            connectTimeout: Duration = .seconds(10)
        ) {
            self.maximumActivityTimeout = maximumActivityTimeout
            self.pongTimeout = pongTimeout
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.connectTimeout = connectTimeout
        }
    }

    /// What the shell does next.
    public enum Action: Sendable, Equatable {
        /// Open the websocket.
        case connect
        /// Send a text frame.
        case send(String)
        /// Ask the CMA for the signature of `socket_id:channel` (`POST /pusher/authenticate`); answer with
        /// ``authorized(channel:auth:socketID:at:)`` or ``authorizationFailed(channel:reason:at:)``.
        case authorize(socketID: String, channel: String)
        /// A job result arrived.
        case deliver(PushedJobResult)
        /// `channel` is subscribed: events published on it from now on arrive.
        case subscribed(String)
        /// `channel` cannot be subscribed (authorization or subscription refused); its jobs are polled.
        case channelRefused(String, reason: String)
        /// The connection is gone: no channel is subscribed until ``subscribed(_:)`` says so again.
        case channelsLost(reason: String)
        /// Close the websocket (the shell then reports ``closed(code:at:)``).
        case close
        /// The server said not to reconnect: push is over for this process; every job is polled.
        case giveUp(reason: String)
    }

    /// Where a channel stands.
    public enum ChannelState: Sendable, Equatable {
        /// Wanted, waiting for a connection.
        case waiting
        /// The shell is asking the CMA for its signature.
        case authorizing
        /// `pusher:subscribe` sent, no answer yet.
        case subscribing
        /// Events arrive.
        case subscribed
        /// Refused; not retried on this connection.
        case refused(String)
    }

    enum Phase: Equatable {
        /// Not connected; `retryAt` is when the next attempt goes out.
        case disconnected(retryAt: ContinuousClock.Instant)
        /// The shell is opening the socket, since `since`.
        case connecting(since: ContinuousClock.Instant)
        /// `pusher:connection_established` received.
        case connected(socketID: String, activityTimeout: Duration)
        /// `close` asked of the shell; waiting for it to report the close.
        case closing
        /// The server said not to reconnect.
        case stopped(reason: String)
    }

    /// The timings.
    public let configuration: Configuration
    private(set) var phase: Phase
    /// Every channel asked for, in the order asked.
    private(set) var channelOrder: [String] = []
    /// Where each one stands on the current connection.
    public private(set) var channels: [String: ChannelState] = [:]
    private var lastActivity: ContinuousClock.Instant
    private var pingSentAt: ContinuousClock.Instant?
    /// Connection attempts that failed in a row (for the back-off).
    private var failures = 0
    /// A close code the server announced with `pusher:error` before closing.
    private var announcedCode: Int?
    /// Successful connections so far (the first is not a reconnection).
    public private(set) var connections = 0

    /// A machine that connects at its first ``tick(at:)``.
    public init(configuration: Configuration = .init(), now: ContinuousClock.Instant) {
        self.configuration = configuration
        self.phase = .disconnected(retryAt: now)
        self.lastActivity = now
    }

    /// Whether `channel` is subscribed now.
    public func isSubscribed(_ channel: String) -> Bool { channels[channel] == .subscribed }

    /// Whether the server said not to reconnect.
    public var hasGivenUp: Bool {
        if case .stopped = phase { return true }
        return false
    }

    /// Whether a connection is established now.
    public var isConnected: Bool {
        if case .connected = phase { return true }
        return false
    }

    /// When ``tick(at:)`` next has something to do.
    public var nextDeadline: ContinuousClock.Instant? {
        switch phase {
        case .disconnected(let retryAt): retryAt
        case .connecting(let since): since + configuration.connectTimeout
        case .connected(_, let activityTimeout):
            pingSentAt.map { $0 + configuration.pongTimeout } ?? lastActivity + activityTimeout
        case .closing, .stopped: nil
        }
    }

    // MARK: - Inputs

    /// Asks for `channel` to be subscribed (again, if it was refused).
    public mutating func want(_ channel: String, at now: ContinuousClock.Instant) -> [Action] {
        switch channels[channel] {
        case .waiting, .authorizing, .subscribing, .subscribed: return []
        case .refused, nil: break
        }
        if !channelOrder.contains(channel) { channelOrder.append(channel) }
        if case .stopped(let reason) = phase {
            channels[channel] = .refused(reason)
            return [.channelRefused(channel, reason: reason)]
        }
        channels[channel] = .waiting
        if case .connected(let socketID, _) = phase {
            channels[channel] = .authorizing
            return [.authorize(socketID: socketID, channel: channel)]
        }
        return []
    }

    /// Time passes: connects when due, pings after silence, closes a connection whose ping went unanswered.
    public mutating func tick(at now: ContinuousClock.Instant) -> [Action] {
        switch phase {
        case .disconnected(let retryAt):
            guard now >= retryAt else { return [] }
            phase = .connecting(since: now)
            announcedCode = nil
            return [.connect]
        case .connecting(let since):
            guard now >= since + configuration.connectTimeout else { return [] }
            phase = .closing
            return [.close]
        case .connected(_, let activityTimeout):
            if let pingSentAt {
                guard now >= pingSentAt + configuration.pongTimeout else { return [] }
                phase = .closing
                return [.close]
            }
            guard now >= lastActivity + activityTimeout else { return [] }
            pingSentAt = now
            return [.send(PusherMessage.encode(event: "pusher:ping", data: [:]))]
        case .closing, .stopped:
            return []
        }
    }

    /// A text frame from the server.
    public mutating func received(_ text: String, at now: ContinuousClock.Instant) -> [Action] {
        lastActivity = now
        pingSentAt = nil
        guard let message = PusherMessage(text) else { return [] }
        switch message.event {
        case "pusher:connection_established":
            guard case .connecting = phase, let data = message.dataObject,
                case .string(let socketID)? = data["socket_id"]
            else { return [] }
            var timeout = configuration.maximumActivityTimeout
            if case .number(let seconds)? = data["activity_timeout"], seconds > 0 {
                timeout = min(timeout, .milliseconds(Int64(seconds * 1000)))
            }
            phase = .connected(socketID: socketID, activityTimeout: timeout)
            connections += 1
            var actions: [Action] = []
            for channel in channelOrder {
                // A refused channel is tried again on a new connection: the refusal may have been transient.
                channels[channel] = .authorizing
                actions.append(.authorize(socketID: socketID, channel: channel))
            }
            return actions
        case "pusher_internal:subscription_succeeded":
            guard let channel = message.channel, channels[channel] == .subscribing else { return [] }
            channels[channel] = .subscribed
            failures = 0
            return [.subscribed(channel)]
        case "pusher:subscription_error":
            guard let channel = message.channel, channels[channel] != nil else { return [] }
            let reason = "subscription refused: \(message.dataText)"
            channels[channel] = .refused(reason)
            return [.channelRefused(channel, reason: reason)]
        case "pusher:ping":
            return [.send(PusherMessage.encode(event: "pusher:pong", data: [:]))]
        case "pusher:error":
            if case .number(let code)? = message.dataObject?["code"] {
                announcedCode = Int(code)
                if (4000..<4100).contains(Int(code)) {
                    return [.close]
                }
            }
            return []
        case "job-result":
            guard let channel = message.channel, channels[channel] == .subscribed,
                let result = PushedJobResult(jobResultData: message.dataText)
            else { return [] }
            return [.deliver(result)]
        default:
            return []
        }
    }

    /// The CMA signed `socketID:channel`; subscribes if that socket is still the connection's.
    public mutating func authorized(
        channel: String, auth: String, socketID: String, at now: ContinuousClock.Instant
    ) -> [Action] {
        guard case .connected(let current, _) = phase, current == socketID, channels[channel] == .authorizing else {
            return []
        }
        channels[channel] = .subscribing
        return [.send(PusherMessage.encode(event: "pusher:subscribe", data: ["channel": channel, "auth": auth]))]
    }

    /// The CMA refused to sign for `channel`.
    public mutating func authorizationFailed(
        channel: String, reason: String, at now: ContinuousClock.Instant
    ) -> [Action] {
        guard channels[channel] == .authorizing else { return [] }
        let reason = "authorization refused: \(reason)"
        channels[channel] = .refused(reason)
        return [.channelRefused(channel, reason: reason)]
    }

    /// The websocket closed (or could not be opened): `code` is the close code, if the server sent one.
    public mutating func closed(code: Int?, at now: ContinuousClock.Instant) -> [Action] {
        if case .stopped = phase { return [] }
        let code = announcedCode ?? code
        announcedCode = nil
        pingSentAt = nil
        var actions: [Action] = []
        let wasSubscribed = channels.values.contains(.subscribed)
        for channel in channelOrder {
            if case .refused = channels[channel] { continue }
            channels[channel] = .waiting
        }
        let reason = code.map { "connection closed with code \($0)" } ?? "connection closed"
        if wasSubscribed {
            actions.append(.channelsLost(reason: reason))
        }
        if let code, (4000..<4100).contains(code) {
            let reason = "the push server refused the connection (code \(code)); job results are polled"
            phase = .stopped(reason: reason)
            for channel in channelOrder { channels[channel] = .refused(reason) }
            actions.append(.giveUp(reason: reason))
            return actions
        }
        let delay: Duration
        if let code, (4200..<4300).contains(code) {
            delay = .zero
        } else {
            var backoff = configuration.initialBackoff
            for _ in 0..<min(failures, 16) { backoff = backoff * 2 }
            delay = min(backoff, configuration.maximumBackoff)
        }
        failures += 1
        phase = .disconnected(retryAt: now + delay)
        return actions
    }
}

/// A job result as DatoCMS pushes it: `{"jobId": "…", "status": 200, "payload": {…}}`.
public enum PushedJobResult: Sendable, Equatable {
    /// The job finished; its result is the same as `GET /job-results/:id` would give.
    case finished(JobID, FinishedJob)
    /// The result was too large for Pusher (status 413): fetch it with `GET /job-results/:id`.
    case tooLarge(JobID)

    /// The job it is about.
    public var job: JobID {
        switch self {
        case .finished(let job, _), .tooLarge(let job): job
        }
    }

    /// Parses the `data` of a `job-result` event; `nil` if it is not one.
    init?(jobResultData text: String) {
        struct Document: Decodable {
            var jobId: String
            var status: Int
            var payload: JobResultDocument.Payload?

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                // DatoCMS sends the id as a string; a number is accepted too.
                if let text = try? container.decode(String.self, forKey: .jobId) {
                    jobId = text
                } else {
                    jobId = String(try container.decode(Int.self, forKey: .jobId))
                }
                status = try container.decode(Int.self, forKey: .status)
                payload = try? container.decodeIfPresent(JobResultDocument.Payload.self, forKey: .payload)
            }

            enum CodingKeys: String, CodingKey { case jobId, status, payload }
        }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(text.utf8)),
            !document.jobId.isEmpty
        else { return nil }
        let job = JobID(document.jobId)
        if document.status == 413 {
            self = .tooLarge(job)
        } else {
            self = .finished(job, FinishedJob(status: document.status, payload: document.payload))
        }
    }
}

/// One Pusher protocol message: `{"event": "…", "channel": "…", "data": …}`, where `data` is usually a JSON text.
struct PusherMessage {
    var event: String
    var channel: String?
    var data: JSONValue?

    init?(_ text: String) {
        struct Document: Decodable {
            var event: String
            var channel: String?
            var data: JSONValue?
        }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(text.utf8)) else { return nil }
        event = document.event
        channel = document.channel
        data = document.data
    }

    /// `data` as text: the string itself, or the compact form of an object.
    var dataText: String {
        switch data {
        case .string(let text): text
        case nil: ""
        case let value?: value.compactText
        }
    }

    /// `data` as an object, decoding a JSON text if it is one.
    var dataObject: [String: JSONValue]? {
        switch data {
        case .object(let object): return object
        case .string(let text):
            guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            else { return nil }
            return object
        default: return nil
        }
    }

    /// A client message with an object as its data (keys sorted).
    static func encode(event: String, data: [String: String]) -> String {
        struct Document: Encodable {
            var event: String
            var data: [String: String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = (try? encoder.encode(Document(event: event, data: data))) ?? Data()
        return String(decoding: bytes, as: UTF8.self)
    }
}
