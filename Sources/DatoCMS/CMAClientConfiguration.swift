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
        pacing: RateLimiter.Pacing = .proactive
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
    }
}
