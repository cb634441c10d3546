/// Everything the CMA client needs to know; a value validated by whoever builds it.
public struct CMAClientConfiguration: Sendable {
    /// Base URL of the API, without a trailing slash. Default `https://site-api.datocms.com`.
    public var baseURL: String
    /// The API token.
    public var apiToken: APIToken
    /// Environment used when a call passes `environment: nil`; `nil` means the primary environment
    /// (no `X-Environment` header).
    public var defaultEnvironment: String?
    /// The token's request budget, shared by every request of this process. Default 60/3s.
    public var rateLimit: RateLimit
    /// How long to wait for a job result before giving up with `timed_out`. Default 600 s.
    public var jobTimeout: Duration
    /// Deadline for one HTTP request, response body included. Default 30 s.
    public var requestTimeout: Duration
    /// Total time budget for retrying one request (429s, 5xx, transient errors, network errors). Default 120 s.
    public var retryDeadline: Duration
    /// First retry backoff ceiling; doubles per attempt (full jitter). Default 250 ms.
    public var retryBaseDelay: Duration
    /// Largest retry backoff ceiling. Default 10 s.
    public var retryMaxDelay: Duration
    /// Tuning of the job-result poll schedule.
    public var pollSchedule: PollScheduler.Configuration
    /// Adaptive polling (default) or the official client's linear schedule; the latter exists for benchmarks.
    public var pollStrategy: PollScheduler.Strategy
    /// Proactive pacing (default) or reacting to 429s only; the latter exists for benchmarks.
    public var pacing: RateLimiter.Pacing
    /// Whether job results are pushed (DatoCMS's real-time events over Pusher) or polled. Default `.poll` for the
    /// library; the worker's setting defaults to `.auto`.
    public var jobResults: JobResultSource
    /// The Pusher websocket host, without a path: `wss://ws-mt1.pusher.com` (DatoCMS's cluster) by default.
    public var pushURL: String
    /// DatoCMS's Pusher application key.
    public var pushKey: String

    /// The full websocket URL of the push connection (Pusher protocol 7).
    public var pushWebSocketURL: String {
        var base = pushURL
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/app/\(pushKey)?protocol=7&client=upload-purger&version=1"
    }

    /// Creates a configuration; every parameter but the token has the documented default.
    public init(
        apiToken: APIToken,
        baseURL: String = "https://site-api.datocms.com",
        defaultEnvironment: String? = nil,
        rateLimit: RateLimit = .datoCMSDefault,
        jobTimeout: Duration = .seconds(600),
        requestTimeout: Duration = .seconds(30),
        retryDeadline: Duration = .seconds(120),
        retryBaseDelay: Duration = .milliseconds(250),
        retryMaxDelay: Duration = .seconds(10),
        pollSchedule: PollScheduler.Configuration = .init(),
        pollStrategy: PollScheduler.Strategy = .adaptive,
        pacing: RateLimiter.Pacing = .proactive,
        jobResults: JobResultSource = .poll,
        pushURL: String = JobResultSource.datoCMSPushURL,
        pushKey: String = JobResultSource.datoCMSPushKey
    ) {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.baseURL = trimmed
        self.apiToken = apiToken
        self.defaultEnvironment = defaultEnvironment
        self.rateLimit = rateLimit
        self.jobTimeout = jobTimeout
        self.requestTimeout = requestTimeout
        self.retryDeadline = retryDeadline
        self.retryBaseDelay = retryBaseDelay
        self.retryMaxDelay = retryMaxDelay
        self.pollSchedule = pollSchedule
        self.pollStrategy = pollStrategy
        self.pacing = pacing
        self.jobResults = jobResults
        self.pushURL = pushURL
        self.pushKey = pushKey
    }
}

/// How a bulk operation's result is learned.
public enum JobResultSource: String, Sendable, Equatable, CaseIterable {
    /// Pushed when the subscription succeeds, polled otherwise (and as the safety net).
    case auto
    /// Pushed; start-up fails when the channel cannot be subscribed.
    case push
    /// Polled (`GET /job-results/:id`) only.
    case poll

    /// DatoCMS's Pusher cluster.
    public static let datoCMSPushURL = "wss://ws-mt1.pusher.com"
    /// DatoCMS's Pusher application key.
    public static let datoCMSPushKey = "75e6ef0fe5d39f481626"
}
