import Crypto
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The simulated Pusher server: websocket connections speaking protocol 7, private channels whose subscriptions
/// carry an HMAC-SHA256 signature made with the application secret, and the `job-result` events of finished jobs.
final class PushHub: Sendable {
    private struct Connection {
        var socketID: String
        var channels: Set<String> = []
        var outbox: AsyncStream<Outgoing>.Continuation
    }

    enum Outgoing: Sendable {
        case text(String)
        case close(code: Int)
    }

    private struct State {
        var connections: [Int: Connection] = [:]
        var nextConnection = 1
        /// Every upgraded channel, closed or not: dropped at shutdown.
        var channels: [any Channel] = []
        var random: SplitMix64
        /// Events waiting for their delay: (when, channel, job, data).
        var delayed: [(at: ContinuousClock.Instant, channel: String, jobID: String, data: String)] = []
    }

    let configuration: SimulatorPush
    private let state: Mutex<State>
    private let logger: Logger

    init(configuration: SimulatorPush, seed: UInt64, logger: Logger) {
        self.configuration = configuration
        self.state = Mutex(State(random: SplitMix64(seed: seed ^ 0x5055_5348)))
        self.logger = logger
    }

    /// Open connections subscribed to at least one channel.
    var subscribedConnections: Int {
        state.withLock { state in state.connections.values.count { !$0.channels.isEmpty } }
    }

    // MARK: - Signatures

    /// `key:hex(HMAC-SHA256(secret, "socket_id:channel"))`, as Pusher checks private-channel subscriptions.
    static func signature(key: String, secret: String, socketID: String, channel: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("\(socketID):\(channel)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "\(key):" + code.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// The fields of an authorization request: JSON (DatoCMS's Ruby client) or a form (pusher-js).
    static func authenticationFields(_ body: [UInt8], contentType: String?) -> [String: String]? {
        if contentType?.contains("json") == true {
            return try? JSONDecoder().decode([String: String].self, from: Data(body))
        }
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            fields[key] = String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return fields.isEmpty ? nil : fields
    }

    // MARK: - Connections

    /// Serves one websocket until it closes.
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel) async {
        let (outgoing, outbox) = AsyncStream.makeStream(of: Outgoing.self)
        let (id, socketID) = state.withLock { state in
            let id = state.nextConnection
            state.nextConnection += 1
            let socketID = "\(100_000 + id).\(state.random.next() % 1_000_000)"
            state.connections[id] = Connection(socketID: socketID, outbox: outbox)
            state.channels.append(channel)
            return (id, socketID)
        }
        defer { _ = state.withLock { $0.connections.removeValue(forKey: id) } }
        let established = Self.encode(
            event: "pusher:connection_established", channel: nil,
            data: #"{"socket_id":"\#(socketID)","activity_timeout":\#(configuration.activityTimeoutSeconds)}"#)
        outbox.yield(.text(established))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in outgoing {
                    switch message {
                    case .text(let text):
                        try? await outbound.write(.text(text))
                    case .close(let code):
                        try? await outbound.close(.unknown(UInt16(code)), reason: "simulated close")
                        return
                    }
                }
            }
            if let every = configuration.closeEvery {
                group.addTask {
                    guard (try? await Task.sleep(for: every)) != nil else { return }
                    outbox.yield(.close(code: self.configuration.closeCode))
                }
            }
            do {
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    handle(text, connection: id, socketID: socketID, outbox: outbox)
                }
            } catch {
                logger.debug("Push connection ended", metadata: ["error": "\(error)"])
            }
            outbox.finish()
            group.cancelAll()
        }
    }

    private func handle(
        _ text: String, connection: Int, socketID: String, outbox: AsyncStream<Outgoing>.Continuation
    ) {
        struct Message: Decodable {
            struct Subscription: Decodable {
                var channel: String
                var auth: String?
            }
            var event: String
            var data: Subscription?

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                event = try container.decode(String.self, forKey: .event)
                data = try? container.decodeIfPresent(Subscription.self, forKey: .data)
            }
            enum CodingKeys: String, CodingKey { case event, data }
        }
        guard let message = try? JSONDecoder().decode(Message.self, from: Data(text.utf8)) else { return }
        switch message.event {
        case "pusher:ping":
            outbox.yield(.text(Self.encode(event: "pusher:pong", channel: nil, data: "{}")))
        case "pusher:subscribe":
            guard let subscription = message.data else { return }
            let expected = Self.signature(
                key: configuration.appKey, secret: configuration.appSecret, socketID: socketID,
                channel: subscription.channel)
            guard subscription.auth == expected else {
                outbox.yield(
                    .text(
                        Self.encode(
                            event: "pusher:subscription_error", channel: subscription.channel,
                            data: #"{"type":"AuthError","error":"Invalid signature","status":401}"#)))
                return
            }
            state.withLock { _ = $0.connections[connection]?.channels.insert(subscription.channel) }
            outbox.yield(
                .text(
                    Self.encode(
                        event: "pusher_internal:subscription_succeeded", channel: subscription.channel, data: "{}")))
        default:
            break
        }
    }

    /// Drops every connection at once (the simulator is stopping, and its server waits for open websockets to
    /// end: a client that stopped reading would hold it forever).
    func closeAll() {
        let channels = state.withLock { $0.channels }
        for channel in channels { channel.close(promise: nil) }
    }

    // MARK: - Events

    /// Publishes settled jobs' events (after the configured delay, minus the dropped ones); returns the ids of the
    /// jobs whose event reached at least one subscriber.
    func publish(
        _ events: [(channel: String, jobID: String, data: String)], at now: ContinuousClock.Instant
    ) -> (delivered: [String], dropped: Int) {
        let (due, dropped) = state.withLock { state in
            var dropped = 0
            for event in events {
                if configuration.dropEvents > 0,
                    Double(state.random.next() % 1_000_000) / 1_000_000 < configuration.dropEvents
                {
                    dropped += 1
                    continue
                }
                state.delayed.append((now + configuration.eventDelay, event.channel, event.jobID, event.data))
            }
            let due = state.delayed.filter { $0.at <= now }
            state.delayed.removeAll { $0.at <= now }
            return (due, dropped)
        }
        var delivered: [String] = []
        for event in due {
            let text = Self.encode(event: "job-result", channel: event.channel, data: event.data)
            let outboxes = state.withLock { state in
                state.connections.values.filter { $0.channels.contains(event.channel) }.map(\.outbox)
            }
            for outbox in outboxes { outbox.yield(.text(text)) }
            if !outboxes.isEmpty { delivered.append(event.jobID) }
        }
        return (delivered, dropped)
    }

    /// When the next delayed event is due.
    var nextDelayedEvent: ContinuousClock.Instant? {
        state.withLock { $0.delayed.map(\.at).min() }
    }

    /// A server message; `data` is sent as a JSON text inside the message, as Pusher does.
    static func encode(event: String, channel: String?, data: String) -> String {
        var object: [String: String] = ["event": event, "data": data]
        if let channel { object["channel"] = channel }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(object)) ?? Data(), as: UTF8.self)
    }
}

extension SimulatorPush {
    /// The authorization a subscriber of `channel` on `socketID` must present.
    func signature(socketID: String, channel: String) -> String {
        PushHub.signature(key: appKey, secret: appSecret, socketID: socketID, channel: channel)
    }
}
