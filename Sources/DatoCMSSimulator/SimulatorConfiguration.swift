public import DatoCMS

/// How the simulated Content Management API behaves.
public struct SimulatorConfiguration: Sendable {
    /// Interface to bind. Default `127.0.0.1`.
    public var host: String
    /// Port to bind; `0` picks a free one. Default `0`.
    public var port: Int
    /// The only API token accepted (`Authorization: Bearer <token>`).
    public var apiToken: String
    /// Environments served: `nil` is the primary environment (no `X-Environment` header), strings are sandboxes.
    public var environments: [String?]
    /// Uploads seeded into each environment.
    public var uploadsPerEnvironment: Int
    /// Fraction of seeded uploads used by records (their deletion fails).
    public var inUseFraction: Double
    /// Seed of every random choice (ids, in-use set, job jitter, faults).
    public var seed: UInt64
    /// Requests allowed per token in any window; more get 429 with `X-RateLimit-Reset`.
    public var rateLimit: RateLimit
    /// Fixed part of a job's duration.
    public var jobBaseDuration: Duration
    /// Cost per upload id of a job's duration.
    public var jobPerUploadDuration: Duration
    /// Relative jitter of job durations: each job takes `(base + n·perUpload) · (1 ± jitter)`, uniformly.
    public var jobJitter: Double
    /// Upload ids the API refuses outright: a bulk request containing one gets `422 INVALID_FIELD`.
    public var refusedUploadIDs: Set<String>
    /// Uploads another client of the site deletes per second, picked at random among those not in use: ids a
    /// request names may be gone before its job runs. Default 0.
    public var externalDeletionsPerSecond: Double
    /// Jobs the site runs at once; later ones queue (first come, first run) and their time in the queue counts in
    /// their duration. `nil` (the default) runs every job at once.
    public var maxConcurrentJobs: Int?
    /// Injected failures.
    public var faults: SimulatorFaults
    /// The Pusher side: `GET /site`, `POST /pusher/authenticate` and the websocket that pushes job results.
    public var push: SimulatorPush

    /// Creates a configuration; every parameter has a default suited to tests.
    public init(
        host: String = "127.0.0.1", port: Int = 0, apiToken: String = "simulator-token",
        environments: [String?] = [nil, "staging"], uploadsPerEnvironment: Int = 1000, inUseFraction: Double = 0.1,
        seed: UInt64 = 42, rateLimit: RateLimit = .datoCMSDefault, jobBaseDuration: Duration = .milliseconds(500),
        jobPerUploadDuration: Duration = .milliseconds(5), jobJitter: Double = 0.1,
        refusedUploadIDs: Set<String> = [], externalDeletionsPerSecond: Double = 0, maxConcurrentJobs: Int? = nil,
        faults: SimulatorFaults = .init(), push: SimulatorPush = .init()
    ) {
        self.host = host
        self.port = port
        self.apiToken = apiToken
        self.environments = environments
        self.uploadsPerEnvironment = uploadsPerEnvironment
        self.inUseFraction = inUseFraction
        self.seed = seed
        self.rateLimit = rateLimit
        self.jobBaseDuration = jobBaseDuration
        self.jobPerUploadDuration = jobPerUploadDuration
        self.jobJitter = jobJitter
        self.refusedUploadIDs = refusedUploadIDs
        self.externalDeletionsPerSecond = externalDeletionsPerSecond
        self.maxConcurrentJobs = maxConcurrentJobs.map { max($0, 1) }
        self.faults = faults
        self.push = push
    }
}

/// Probabilities (0…1) of injected failures, drawn per request.
public struct SimulatorFaults: Sendable, Equatable {
    /// `500` with an HTML body, before anything is done.
    public var serverError500Html: Double
    /// `503 SERVICE_UNAVAILABLE` with `transient: true`, before anything is done.
    public var unavailable503Transient: Double
    /// `429` although the token is within its limit ("DatoCMS under load"), with `X-RateLimit-Reset`.
    public var loadShedding429: Double
    /// Seconds in the `X-RateLimit-Reset` of load-shedding 429s.
    public var loadSheddingResetSeconds: Int
    /// Responses delayed by ``slowResponseDelay`` before processing.
    public var slowResponse: Double
    /// Delay of slow responses.
    public var slowResponseDelay: Duration
    /// Bulk-destroy POSTs accepted (the job starts and will delete) whose connection is then closed without an
    /// answer.
    public var lostPostResponse: Double
    /// Jobs that finish with status 500 and delete nothing.
    public var failedJob500: Double

    /// No faults unless given.
    public init(
        serverError500Html: Double = 0, unavailable503Transient: Double = 0, loadShedding429: Double = 0,
        loadSheddingResetSeconds: Int = 1, slowResponse: Double = 0, slowResponseDelay: Duration = .seconds(2),
        lostPostResponse: Double = 0, failedJob500: Double = 0
    ) {
        self.serverError500Html = serverError500Html
        self.unavailable503Transient = unavailable503Transient
        self.loadShedding429 = loadShedding429
        self.loadSheddingResetSeconds = loadSheddingResetSeconds
        self.slowResponse = slowResponse
        self.slowResponseDelay = slowResponseDelay
        self.lostPostResponse = lostPostResponse
        self.failedJob500 = failedJob500
    }
}

/// How the simulated Pusher endpoint behaves: a websocket at `/app/{key}` on the simulator's own port, speaking
/// Pusher protocol 7, publishing each finished job as a `job-result` event on its site's private channel.
public struct SimulatorPush: Sendable, Equatable {
    /// Whether the websocket exists (otherwise `/app/…` is a 404, as for a network that blocks it). Default true.
    public var enabled: Bool
    /// The application key of the websocket path; DatoCMS's by default.
    public var appKey: String
    /// The application secret that signs channel authorizations (HMAC-SHA256).
    public var appSecret: String
    /// The site's id (`GET /site`), which names the channels.
    public var siteID: String
    /// Fraction of `job-result` events not sent (Pusher keeps nothing: a subscriber never sees them).
    public var dropEvents: Double
    /// Delay between a job's end and its event.
    public var eventDelay: Duration
    /// Close every connection this long after it opened, with ``closeCode``. `nil`: never.
    public var closeEvery: Duration?
    /// Close code of those closes (4200–4299: reconnect at once; 4100–4199: after a back-off; 4000–4099: never).
    public var closeCode: Int
    /// `POST /pusher/authenticate` answers 403.
    public var refuseAuthorization: Bool
    /// Jobs with more ids than this get a 413 event (payload too large for Pusher); `nil`: none.
    public var payloadTooLargeAbove: Int?
    /// The `activity_timeout` announced, in seconds.
    public var activityTimeoutSeconds: Int

    /// The defaults: enabled, no faults.
    public init(
        enabled: Bool = true, appKey: String = JobResultSource.datoCMSPushKey,
        appSecret: String = "simulator-push-secret", siteID: String = "31337", dropEvents: Double = 0,
        eventDelay: Duration = .zero, closeEvery: Duration? = nil, closeCode: Int = 4200,
        refuseAuthorization: Bool = false, payloadTooLargeAbove: Int? = nil, activityTimeoutSeconds: Int = 120
    ) {
        self.enabled = enabled
        self.appKey = appKey
        self.appSecret = appSecret
        self.siteID = siteID
        self.dropEvents = dropEvents
        self.eventDelay = eventDelay
        self.closeEvery = closeEvery
        self.closeCode = closeCode
        self.refuseAuthorization = refuseAuthorization
        self.payloadTooLargeAbove = payloadTooLargeAbove
        self.activityTimeoutSeconds = activityTimeoutSeconds
    }

    /// The channel of an environment's job results.
    public func channel(environment: String?) -> String {
        CMAClient.pushChannelName(site: siteID, environment: environment)
    }

    /// Every channel of the site.
    func channels(environments: [String?]) -> Set<String> {
        Set(environments.map { channel(environment: $0) })
    }
}
