public import AsyncHTTPClient
public import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A DatoCMS Content Management API client for bulk upload deletion.
///
/// One instance per process and token: it owns the process-wide ``RateLimiter`` (learning from every response's
/// `X-RateLimit-*` headers) and the ``PollScheduler`` (learning job durations), so every call shares one budget.
/// The pure cores live behind a `Mutex`; this class only sends requests and sleeps.
public final class CMAClient: Sendable {
    /// The configuration in use.
    public let configuration: CMAClientConfiguration
    let httpClient: HTTPClient
    let logger: Logger
    let retryPolicy: RetryPolicy
    let state: Mutex<State>
    let clock = ContinuousClock()
    /// The push connection, unless job results are only polled.
    let push: PushedJobResults?

    struct State {
        var rateLimiter: RateLimiter
        var pollScheduler: PollScheduler
        var statistics = CMAClientStatistics()
        /// The site's id, from `GET /site`, once known: it names the push channels.
        var siteID: String?
    }

    /// Creates a client. It does not own `httpClient` (the shared singleton by default).
    public init(configuration: CMAClientConfiguration, httpClient: HTTPClient = .shared, logger: Logger) {
        NIOTypeMetadata.instantiate()
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
        self.retryPolicy = RetryPolicy(
            baseDelay: configuration.retryBaseDelay, maxDelay: configuration.retryMaxDelay,
            deadline: configuration.retryDeadline)
        self.state = Mutex(
            State(
                rateLimiter: RateLimiter(configuration.rateLimit, pacing: configuration.pacing),
                pollScheduler: PollScheduler(
                    configuration: configuration.pollSchedule, strategy: configuration.pollStrategy)))
        self.push =
            configuration.jobResults == .poll
            ? nil : PushedJobResults(url: configuration.pushWebSocketURL, logger: logger)
    }

    /// A snapshot of the requests, waits, polls and jobs so far.
    public var statistics: CMAClientStatistics {
        state.withLock { $0.statistics }
    }

    /// The poll schedule's current prediction for a job of `uploads` ids (for diagnostics and benchmarks).
    public func predictedJobDuration(uploads: Int) -> Duration {
        state.withLock { $0.pollScheduler.predictedDuration(uploads: uploads) }
    }

    // MARK: - Transport

    enum Endpoint: String {
        case bulkDestroy = "bulk_destroy"
        case jobResult = "job_result"
        case uploads
        case site
        case pusherAuthenticate = "pusher_authenticate"
    }

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        /// When the rate limiter granted the request, i.e. just before it was sent.
        var sentAt: ContinuousClock.Instant
        var receivedAt: ContinuousClock.Instant
    }

    enum SendResult {
        case response(Response)
        /// A non-idempotent request failed after it may have reached the server.
        case lost(reason: String)
    }

    /// Sends one logical request: waits for the rate limiter, retries per the ``RetryPolicy``, classifies the
    /// answer. Returns 2xx responses and those `acceptedStatus` allows; throws everything else as ``CMAError``.
    ///
    /// When `idempotent` is false, a network error other than a connect timeout ends the attempt with `.lost`
    /// instead of a retry: the request may have been executed, and re-sending it blindly could act twice.
    /// 5xx responses are retried even for POSTs: the server answered, and DatoCMS starts no job when it fails a
    /// request.
    func send(
        _ method: HTTPMethod, path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
        contentType: String = "application/vnd.api+json", environment: String?, endpoint: Endpoint,
        priority: RateLimiter.Priority, idempotent: Bool = true, acceptedStatus: (Int) -> Bool = { _ in false },
        onAttempt: () -> Void = {}
    ) async throws(CMAError) -> SendResult {
        let request = makeRequest(
            method, path: path, query: query, body: body, contentType: contentType, environment: environment)
        let started = clock.now
        var attempt = 0
        while true {
            attempt += 1
            let (ticket, sentAt) = try await acquire(priority)
            onAttempt()
            let result = await execute(request)
            let receivedAt = clock.now
            let failure: CMAError
            var honouredWait: Duration?
            switch result {
            case .failure(let error):
                record(endpoint: endpoint, status: "network_error", ticket: ticket, feedback: nil, at: receivedAt)
                let description = String(describing: error)
                if !idempotent, !Self.isConnectFailure(error) {
                    logger.warning(
                        "CMA request failed after it may have been sent",
                        metadata: ["endpoint": "\(endpoint.rawValue)", "error": "\(description)"])
                    return .lost(reason: description)
                }
                failure = CMAError(kind: .retryable, message: "network error: \(description)")
            case .success(let (status, headers, bytes)):
                let feedback = Self.feedback(from: headers, status: status)
                record(endpoint: endpoint, status: String(status), ticket: ticket, feedback: feedback, at: receivedAt)
                let response = Response(
                    status: status, headers: headers, body: bytes, sentAt: sentAt, receivedAt: receivedAt)
                if (200..<300).contains(status) || acceptedStatus(status) {
                    return .response(response)
                }
                let apiError = APIErrorDocument.decode(bytes)
                let code = apiError?.code
                let message = apiError?.summary ?? Self.snippet(bytes)
                switch status {
                case 401, 403:
                    throw CMAError(kind: .fatal, httpStatus: status, code: code, message: message)
                case 429:
                    failure = CMAError(kind: .retryable, httpStatus: status, code: code, message: message)
                    honouredWait = feedback.resetSeconds.map { .milliseconds(Int64(($0 * 1000).rounded(.up))) }
                case 500...:
                    failure = CMAError(kind: .retryable, httpStatus: status, code: code, message: message)
                default:
                    guard apiError?.isTransient == true else {
                        throw CMAError(kind: .rejected, httpStatus: status, code: code, message: message)
                    }
                    failure = CMAError(kind: .retryable, httpStatus: status, code: code, message: message)
                }
            }
            var generator = SystemRandomNumberGenerator()
            let decision = retryPolicy.decide(
                afterAttempt: attempt, elapsed: clock.now - started, honouredWait: honouredWait,
                using: &generator)
            guard case .retry(let delay) = decision else {
                logger.warning(
                    "CMA request gave up after retries",
                    metadata: ["endpoint": "\(endpoint.rawValue)", "attempts": "\(attempt)", "error": "\(failure)"])
                throw failure
            }
            logger.debug(
                "Retrying CMA request",
                metadata: ["endpoint": "\(endpoint.rawValue)", "attempt": "\(attempt)", "error": "\(failure)"])
            state.withLock { $0.statistics.retries += 1 }
            try await sleep(for: delay)
        }
    }

    /// Waits for a grant from the process-wide rate limiter.
    func acquire(_ priority: RateLimiter.Priority) async throws(CMAError) -> (
        RateLimiter.Ticket, ContinuousClock.Instant
    ) {
        var waitedSince: ContinuousClock.Instant?
        while true {
            let now = clock.now
            let decision = state.withLock { $0.rateLimiter.acquire(at: now, priority: priority) }
            switch decision {
            case .granted(let ticket):
                if let waitedSince {
                    let waited = now - waitedSince
                    state.withLock {
                        $0.statistics.rateLimitWaits += 1
                        $0.statistics.rateLimitWaitTime += waited
                    }
                    CMAMetrics.recordRateLimitWait(waited)
                }
                return (ticket, now)
            case .wait(let until):
                if waitedSince == nil { waitedSince = now }
                try await sleep(until: until)
            }
        }
    }

    func sleep(for duration: Duration) async throws(CMAError) {
        try await sleep(until: clock.now + duration)
    }

    /// Sleeps; cancellation surfaces as a retryable error so callers unwind promptly.
    func sleep(until deadline: ContinuousClock.Instant) async throws(CMAError) {
        do {
            try await Task.sleep(until: deadline, clock: clock)
        } catch {
            throw CMAError(kind: .retryable, code: "CANCELLED", message: "cancelled while waiting")
        }
    }

    private func record(
        endpoint: Endpoint, status: String, ticket: RateLimiter.Ticket, feedback: RateLimiter.ServerFeedback?,
        at now: ContinuousClock.Instant
    ) {
        CMAMetrics.recordResponse(endpoint: endpoint.rawValue, status: status)
        state.withLock { state in
            state.statistics.requests[endpoint.rawValue, default: [:]][status, default: 0] += 1
            if let feedback {
                state.rateLimiter.record(feedback, for: ticket, at: now)
                if feedback.rateLimited { state.statistics.rateLimited += 1 }
            }
        }
    }

    // MARK: - HTTP

    private func makeRequest(
        _ method: HTTPMethod, path: String, query: [(String, String)], body: [UInt8]?, contentType: String,
        environment: String?
    ) -> HTTPClientRequest {
        var url = configuration.baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.percentEncode($0.0))=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: configuration.apiToken.authorizationHeaderValue)
        request.headers.add(name: "X-Api-Version", value: "3")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "upload-purger")
        if let environment {
            request.headers.add(name: "X-Environment", value: environment)
        }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    private func execute(_ request: HTTPClientRequest) async -> Result<(Int, HTTPHeaders, [UInt8]), any Error> {
        do {
            let timeout = TimeAmount.nanoseconds(configuration.requestTimeout.nanoseconds)
            let response = try await httpClient.execute(request, deadline: .now() + timeout, logger: logger)
            let buffer = try await response.body.collect(upTo: 8 << 20)
            return .success((Int(response.status.code), response.headers, Array(buffer.readableBytesView)))
        } catch {
            return .failure(error)
        }
    }

    /// Errors that prove the request never left this process.
    private static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .invalidURL || error == .cancelled
        }
        return false
    }

    static func feedback(from headers: HTTPHeaders, status: Int) -> RateLimiter.ServerFeedback {
        RateLimiter.ServerFeedback(
            limit: headers.first(name: "X-RateLimit-Limit").flatMap { Int($0) },
            remaining: headers.first(name: "X-RateLimit-Remaining").flatMap { Int($0) },
            resetSeconds: headers.first(name: "X-RateLimit-Reset").flatMap { Double($0) },
            rateLimited: status == 429)
    }

    private static func snippet(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        let flattened = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flattened.isEmpty ? "empty response body" : flattened
    }

    private static func percentEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"), UInt8(ascii: ","):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                result += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return result
    }
}
