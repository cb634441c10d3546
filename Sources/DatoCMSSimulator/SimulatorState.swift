import DatoCMS

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A request reduced to what the simulated API looks at.
struct SimulatedRequest {
    enum Route {
        case bulkDestroy, jobResult(String), uploads, site, pusherAuthenticate

        /// Whether its body is read.
        var hasBody: Bool {
            switch self {
            case .bulkDestroy, .pusherAuthenticate: true
            case .jobResult, .uploads, .site: false
            }
        }
    }
    var route: Route
    var authorization: String?
    var apiVersion: String?
    var environment: String?
    var contentType: String?
    var query: [String: String]
    var body: [UInt8]
}

/// The answer, and what to do with the connection.
struct SimulatedResponse {
    var status: Int
    var headers: [(String, String)] = []
    var body: String
    var contentType = "application/json"
    /// Close the connection instead of answering (the request was executed).
    var dropConnection = false
}

/// The simulated API's data and rules: uploads, jobs, rate limiting, faults, statistics. Not thread-safe; the
/// simulator keeps it behind a mutex. Jobs complete lazily: every request first settles the jobs whose time has come.
struct SimulatorState {
    struct Job {
        var id: String
        var environment: String?
        var ids: [UploadID]
        var startedAt: ContinuousClock.Instant
        var startedAtWall: Double
        var duration: Duration
        var failWith500: Bool
        var settled = false
        var successful = 0
        var failed = 0
        var polls = 0
        var noticedAt: ContinuousClock.Instant?
        /// Held by ``CMASimulator/holdJobs()``: not finished before ``CMASimulator/releaseJobs()``.
        var held = false
        var responseLost = false
        /// Its result was pushed to a subscriber.
        var pushed = false
    }

    /// With ``CMASimulator/holdJobs(after:)``: the number of jobs started from which jobs are held until released.
    var holdFromJob: Int?
    /// Whether a job started now is held until released.
    var holding: Bool { holdFromJob.map { stats.jobsStarted >= $0 } ?? false }
    /// Multiplies every job's duration from now on (``CMASimulator/setJobDurationFactor(_:)``).
    var jobDurationFactor = 1.0
    /// With ``SimulatorConfiguration/maxConcurrentJobs``: when each of the site's job runners is free again.
    var runnersFreeAt: [ContinuousClock.Instant] = []
    /// Whether requests are taken and never answered (``CMASimulator/stopAnswering()``).
    var silenced = false
    /// Jobs started whose result nobody has seen yet.
    var openJobs = 0

    let configuration: SimulatorConfiguration
    var random: SplitMix64
    var seededIDs: [String?: [UploadID]] = [:]
    var existing: [String?: Set<UploadID>] = [:]
    var inUse: [String?: Set<UploadID>] = [:]
    var deleted: [String?: Set<UploadID>] = [:]
    var jobs: [String: Job] = [:]
    var jobOrder: [String] = []
    var nextJobNumber = 4235
    var acceptedTimes: [ContinuousClock.Instant] = []
    var receivedTimes: [ContinuousClock.Instant] = []
    var issuedResets: [(issuedAt: ContinuousClock.Instant, until: ContinuousClock.Instant)] = []
    var stats = SimulatorStats()
    /// Settled jobs' `job-result` events not yet handed to the push hub.
    var pushOutbox: [(channel: String, jobID: String, data: String)] = []
    /// When external deletions were last applied, and the fraction of one carried over.
    var externalDeletionsAt: ContinuousClock.Instant?
    var externalDeletionsOwed = 0.0

    init(configuration: SimulatorConfiguration) {
        self.configuration = configuration
        self.random = SplitMix64(seed: configuration.seed)
        stats.windowSeconds =
            Double(configuration.rateLimit.window.components.seconds)
            + Double(configuration.rateLimit.window.components.attoseconds) / 1e18
        for environment in configuration.environments {
            var ids: [UploadID] = []
            var used: Set<UploadID> = []
            for index in 0..<max(0, configuration.uploadsPerEnvironment) {
                let id = index % 10 == 9 ? Self.legacyID(&random) : Self.uuidID(&random)
                ids.append(id)
                if Double.random(in: 0..<1, using: &random) < configuration.inUseFraction { used.insert(id) }
            }
            seededIDs[environment] = ids
            existing[environment] = Set(ids)
            inUse[environment] = used
            deleted[environment] = []
        }
    }

    // MARK: - Request handling

    /// Rate limiting, authentication and the faults that come before any work.
    mutating func admit(_ request: SimulatedRequest, at now: ContinuousClock.Instant) -> SimulatedResponse? {
        let window = configuration.rateLimit.window
        receivedTimes.append(now)
        receivedTimes.removeAll { $0 + window <= now }
        stats.maxRequestsInWindow = max(stats.maxRequestsInWindow, receivedTimes.count)
        settleJobs(at: now)

        guard let authorization = request.authorization, authorization == "Bearer \(configuration.apiToken)" else {
            return error(401, "INVALID_AUTHORIZATION_HEADER", details: [:], endpoint: request.route)
        }
        // A request sent before its client could have seen the 429 (in flight, or within 50 ms) is not early.
        issuedResets.removeAll { $0.until <= now }
        if issuedResets.contains(where: { now >= $0.issuedAt + .milliseconds(50) }) {
            stats.requestsBeforeReset += 1
        }
        acceptedTimes.removeAll { $0 + window <= now }
        let limit = configuration.rateLimit.requests
        if acceptedTimes.count >= limit {
            let wait = acceptedTimes[0] + window - now
            return rateLimited(resetSeconds: max(1, Int((wait.secondsValue).rounded(.up))), at: now, request: request)
        }
        let faults = configuration.faults
        if roll(faults.loadShedding429) {
            stats.faultsInjected["load_shedding_429", default: 0] += 1
            return rateLimited(resetSeconds: max(1, faults.loadSheddingResetSeconds), at: now, request: request)
        }
        acceptedTimes.append(now)
        if roll(faults.serverError500Html) {
            stats.faultsInjected["server_error_500_html", default: 0] += 1
            var response = SimulatedResponse(
                status: 500, body: "<html><body><h1>500 Internal Server Error</h1></body></html>",
                contentType: "text/html")
            response.headers = rateHeaders()
            count(request.route, 500)
            return response
        }
        if roll(faults.unavailable503Transient) {
            stats.faultsInjected["unavailable_503", default: 0] += 1
            return error(503, "SERVICE_UNAVAILABLE", details: [:], transient: true, endpoint: request.route)
        }
        if request.apiVersion != "3" {
            return error(
                422, "INVALID_API_VERSION", details: ["version": request.apiVersion ?? ""], endpoint: request.route)
        }
        if !configuration.environments.contains(request.environment) {
            return error(
                422, "INVALID_ENVIRONMENT", details: ["environment": request.environment ?? ""], endpoint: request.route
            )
        }
        return nil
    }

    /// Whether this request gets a slow response.
    mutating func isSlow() -> Bool {
        let slow = roll(configuration.faults.slowResponse)
        if slow { stats.faultsInjected["slow_response", default: 0] += 1 }
        return slow
    }

    mutating func handle(_ request: SimulatedRequest, at now: ContinuousClock.Instant) -> SimulatedResponse {
        settleJobs(at: now)
        switch request.route {
        case .bulkDestroy: return bulkDestroy(request, at: now)
        case .jobResult(let id): return jobResult(id, at: now)
        case .uploads: return uploads(request)
        case .site: return site()
        case .pusherAuthenticate: return pusherAuthenticate(request)
        }
    }

    /// `GET /site`: the id that names the push channels.
    private mutating func site() -> SimulatedResponse {
        var response = SimulatedResponse(
            status: 200,
            body: #"{"data":{"type":"site","id":"\#(configuration.push.siteID)","attributes":{"name":"Simulated"}}}"#)
        response.headers = rateHeaders()
        count(.site, 200)
        return response
    }

    /// `POST /pusher/authenticate`: signs `socket_id:channel_name` for a channel of this site.
    private mutating func pusherAuthenticate(_ request: SimulatedRequest) -> SimulatedResponse {
        let push = configuration.push
        guard !push.refuseAuthorization else {
            stats.faultsInjected["push_authorization_refused", default: 0] += 1
            return error(403, "INSUFFICIENT_PERMISSIONS", details: [:], endpoint: .pusherAuthenticate)
        }
        guard let fields = PushHub.authenticationFields(request.body, contentType: request.contentType),
            let channel = fields["channel_name"], let socketID = fields["socket_id"],
            push.channels(environments: configuration.environments).contains(channel)
        else {
            return error(
                422, "INVALID_FIELD", details: ["field": "channel_name"], endpoint: .pusherAuthenticate)
        }
        var response = SimulatedResponse(
            status: 200, body: #"{"auth":"\#(push.signature(socketID: socketID, channel: channel))"}"#)
        response.headers = rateHeaders()
        count(.pusherAuthenticate, 200)
        return response
    }

    /// The `job-result` events of jobs settled since the last call, with their channels.
    mutating func takePushEvents() -> [(channel: String, jobID: String, data: String)] {
        defer { pushOutbox = [] }
        return pushOutbox
    }

    /// A job's result was pushed to a subscriber: it counts as noticed then.
    mutating func notePushed(_ jobID: String, at now: ContinuousClock.Instant) {
        guard var job = jobs[jobID], job.noticedAt == nil else { return }
        job.noticedAt = now
        job.pushed = true
        jobs[jobID] = job
        stats.jobsNoticed += 1
        stats.pushedResults += 1
        openJobs -= 1
    }

    /// `{"status":…,"payload":…}` of a settled job, as `GET /job-results/:id` and the pushed event carry it.
    private func resultAttributes(_ job: Job) -> String {
        if job.failWith500 {
            return
                #"{"status":500,"payload":{"data":[{"id":"\#(job.id)-error","type":"api_error","attributes":{"code":"INTERNAL_SERVER_ERROR","details":{}}}]}}"#
        }
        return #"{"status":200,"payload":{"data":[],"meta":{"successful":\#(job.successful),"failed":\#(job.failed)}}}"#
    }

    private mutating func bulkDestroy(_ request: SimulatedRequest, at now: ContinuousClock.Instant) -> SimulatedResponse
    {
        let route = request.route
        guard request.contentType?.contains("json") == true else {
            return error(
                415, "INVALID_CONTENT_TYPE", details: ["content_type": request.contentType ?? ""], endpoint: route)
        }
        guard let rawIDs = BulkDestroyBody.parse(request.body) else {
            return error(
                422, "INVALID_FORMAT", details: ["message": "not a valid upload_bulk_destroy_operation"],
                endpoint: route)
        }
        if rawIDs.isEmpty {
            return error(422, "MISSING_UPLOAD_IDS", details: [:], endpoint: route)
        }
        if rawIDs.count > 200 {
            return error(
                422, "INVALID_FIELD", details: ["field": "uploads", "code": "VALIDATION_LENGTH", "max": "200"],
                endpoint: route)
        }
        if let refused = rawIDs.first(where: {
            configuration.refusedUploadIDs.contains($0) || UploadID(validating: $0) == nil
        }) {
            return error(
                422, "INVALID_FIELD", details: ["field": "uploads", "code": "VALIDATION_INVALID", "id": refused],
                endpoint: route)
        }
        var seen: Set<UploadID> = []
        let ids = rawIDs.compactMap(UploadID.init(validating:)).filter { seen.insert($0).inserted }
        let id = String(nextJobNumber)
        nextJobNumber += 1
        let nominal = configuration.jobBaseDuration + configuration.jobPerUploadDuration * ids.count
        let jitter =
            configuration.jobJitter > 0
            ? Double.random(in: -configuration.jobJitter...configuration.jobJitter, using: &random) : 0
        var duration = nominal * (max(0.01, 1 + jitter) * jobDurationFactor)
        if let runners = configuration.maxConcurrentJobs, !holding {
            // The job waits for the runner that frees first; its wait counts in its duration.
            if runnersFreeAt.count < runners { runnersFreeAt.append(now) }
            let runner = runnersFreeAt.indices.min { runnersFreeAt[$0] < runnersFreeAt[$1] }!
            let start = max(now, runnersFreeAt[runner])
            runnersFreeAt[runner] = start + duration
            duration = start + duration - now
        }
        let failWith500 = roll(configuration.faults.failedJob500)
        if failWith500 { stats.faultsInjected["failed_job_500", default: 0] += 1 }
        jobs[id] = Job(
            id: id, environment: request.environment, ids: ids, startedAt: now,
            startedAtWall: Date().timeIntervalSince1970, duration: duration, failWith500: failWith500, held: holding)
        jobOrder.append(id)
        stats.jobsStarted += 1
        openJobs += 1
        stats.maxOpenJobs = max(stats.maxOpenJobs, openJobs)
        var response = SimulatedResponse(status: 202, body: #"{"data":{"type":"job","id":"\#(id)"}}"#)
        response.headers = rateHeaders()
        if roll(configuration.faults.lostPostResponse) {
            stats.faultsInjected["lost_post_response", default: 0] += 1
            stats.lostResponses += 1
            jobs[id]?.responseLost = true
            response.dropConnection = true
            count(route, 0)
        } else {
            count(route, 202)
        }
        return response
    }

    private mutating func jobResult(_ id: String, at now: ContinuousClock.Instant) -> SimulatedResponse {
        guard var job = jobs[id] else {
            return error(404, "NOT_FOUND", details: [:], endpoint: .jobResult(id))
        }
        job.polls += 1
        defer { jobs[id] = job }
        guard job.settled else {
            return error(404, "NOT_FOUND", details: [:], endpoint: .jobResult(id))
        }
        if job.noticedAt == nil {
            job.noticedAt = now
            stats.jobsNoticed += 1
            openJobs -= 1
        }
        let attributes = resultAttributes(job)
        var response = SimulatedResponse(
            status: 200, body: #"{"data":{"type":"job_result","id":"\#(id)","attributes":\#(attributes)}}"#)
        response.headers = rateHeaders()
        count(.jobResult(id), 200)
        return response
    }

    private mutating func uploads(_ request: SimulatedRequest) -> SimulatedResponse {
        let limit = request.query["page[limit]"].flatMap { Int($0) } ?? 30
        let offset = request.query["page[offset]"].flatMap { Int($0) } ?? 0
        guard (1...500).contains(limit), offset >= 0 else {
            return error(422, "INVALID_FIELD", details: ["field": "page[limit]"], endpoint: request.route)
        }
        let present = existing[request.environment] ?? []
        var matching = (seededIDs[request.environment] ?? []).filter { present.contains($0) }
        if let filter = request.query["filter[ids]"] {
            let wanted = Set(filter.split(separator: ",").map(String.init))
            matching = matching.filter { wanted.contains($0.rawValue) }
        }
        let page = matching.dropFirst(offset).prefix(limit)
        let items = page.map {
            #"{"type":"upload","id":"\#($0.rawValue)","attributes":{"filename":"\#($0.rawValue).jpg"}}"#
        }
        var response = SimulatedResponse(
            status: 200,
            body: #"{"data":[\#(items.joined(separator: ","))],"meta":{"total_count":\#(matching.count)}}"#)
        response.headers = rateHeaders()
        count(request.route, 200)
        return response
    }

    // MARK: - Jobs

    mutating func settleJobs(at now: ContinuousClock.Instant) {
        deleteExternally(at: now)
        let due = jobOrder.compactMap { id -> Job? in
            guard let job = jobs[id], !job.settled, !job.held, job.startedAt + job.duration <= now else { return nil }
            return job
        }.sorted { $0.startedAt + $0.duration < $1.startedAt + $1.duration }
        for var job in due {
            if !job.failWith500 {
                for id in job.ids {
                    if existing[job.environment]?.contains(id) == true, inUse[job.environment]?.contains(id) != true {
                        existing[job.environment]?.remove(id)
                        if deleted[job.environment, default: []].insert(id).inserted == false {
                            stats.doubleDeletions += 1
                        }
                        stats.deletions += 1
                        job.successful += 1
                    } else {
                        job.failed += 1
                    }
                }
            }
            job.settled = true
            jobs[job.id] = job
            let push = configuration.push
            if push.enabled {
                let channel = push.channel(environment: job.environment)
                if let limit = push.payloadTooLargeAbove, job.ids.count > limit {
                    pushOutbox.append((channel, job.id, #"{"jobId":"\#(job.id)","status":413,"payload":null}"#))
                } else {
                    pushOutbox.append(
                        (channel, job.id, #"{"jobId":"\#(job.id)",\#(resultAttributes(job).dropFirst())"#))
                }
            }
        }
    }

    /// "Another client" deletes uploads not in use at the configured rate, in every environment, uniformly at
    /// random among those left.
    private mutating func deleteExternally(at now: ContinuousClock.Instant) {
        let rate = configuration.externalDeletionsPerSecond
        guard rate > 0 else { return }
        defer { externalDeletionsAt = now }
        guard let last = externalDeletionsAt else { return }
        externalDeletionsOwed += rate * (now - last).secondsValue
        while externalDeletionsOwed >= 1 {
            externalDeletionsOwed -= 1
            for environment in configuration.environments {
                let seeded = seededIDs[environment] ?? []
                guard !seeded.isEmpty else { continue }
                // A few random picks among the seeded ids; when the site is nearly empty, some rounds delete none.
                for _ in 0..<16 {
                    let victim = seeded[Int(random.next() % UInt64(seeded.count))]
                    guard existing[environment]?.contains(victim) == true, inUse[environment]?.contains(victim) != true
                    else { continue }
                    existing[environment]?.remove(victim)
                    deleted[environment, default: []].insert(victim)
                    stats.externalDeletions += 1
                    break
                }
            }
        }
    }

    /// Lets every held job finish; a job whose duration has passed finishes at the next request.
    mutating func releaseJobs() {
        holdFromJob = nil
        for id in jobOrder where jobs[id]?.held == true { jobs[id]?.held = false }
    }

    /// Jobs held and not yet released.
    var heldJobs: Int { jobOrder.count { jobs[$0]?.held == true } }

    // MARK: - Statistics

    mutating func snapshot(at now: ContinuousClock.Instant) -> SimulatorStats {
        settleJobs(at: now)
        var stats = self.stats
        for environment in configuration.environments {
            stats.uploadsLeft[environment ?? "primary"] = existing[environment]?.count ?? 0
        }
        stats.jobs = jobOrder.compactMap { id in
            guard let job = jobs[id] else { return nil }
            return SimulatorStats.Job(
                id: job.id, uploads: job.ids.count, durationSeconds: job.duration.secondsValue, polls: job.polls,
                noticedAfterSeconds: job.noticedAt.map { ($0 - job.startedAt).secondsValue },
                failedWith500: job.failWith500, deleted: job.successful, responseLost: job.responseLost,
                startedAt: job.startedAtWall, lostUploadIDs: job.responseLost ? job.ids.map(\.rawValue) : nil)
        }
        return stats
    }

    // MARK: - Helpers

    private mutating func roll(_ probability: Double) -> Bool {
        probability > 0 && Double.random(in: 0..<1, using: &random) < probability
    }

    private func rateHeaders() -> [(String, String)] {
        let limit = configuration.rateLimit.requests
        return [
            ("X-RateLimit-Limit", String(limit)),
            ("X-RateLimit-Remaining", String(max(0, limit - acceptedTimes.count))),
        ]
    }

    private mutating func rateLimited(
        resetSeconds: Int, at now: ContinuousClock.Instant, request: SimulatedRequest
    ) -> SimulatedResponse {
        stats.rateLimited += 1
        let until = now + .seconds(resetSeconds)
        issuedResets.append((now, until))
        var response = error(429, "RATE_LIMIT_EXCEEDED", details: [:], transient: true, endpoint: request.route)
        response.headers = [
            ("X-RateLimit-Limit", String(configuration.rateLimit.requests)), ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", String(resetSeconds)),
        ]
        return response
    }

    private mutating func error(
        _ status: Int, _ code: String, details: [String: String], transient: Bool = false,
        endpoint: SimulatedRequest.Route
    ) -> SimulatedResponse {
        let detailText = details.keys.sorted().map { #""\#($0)":"\#(Self.escape(details[$0]!))""# }
            .joined(separator: ",")
        let transientText = transient ? #","transient":true"# : ""
        let body =
            #"{"data":[{"id":"\#(String(random.next() % 1_000_000))","type":"api_error","attributes":{"code":"\#(code)","details":{\#(detailText)}\#(transientText)}}]}"#
        var response = SimulatedResponse(status: status, body: body)
        response.headers = rateHeaders()
        count(endpoint, status)
        return response
    }

    private mutating func count(_ route: SimulatedRequest.Route, _ status: Int) {
        let endpoint: String
        switch route {
        case .bulkDestroy: endpoint = "bulk_destroy"
        case .jobResult: endpoint = "job_result"
        case .uploads: endpoint = "uploads"
        case .site: endpoint = "site"
        case .pusherAuthenticate: endpoint = "pusher_authenticate"
        }
        stats.requests[endpoint, default: [:]][status == 0 ? "dropped" : String(status), default: 0] += 1
    }

    private static func escape(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += "?"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func uuidID(_ random: inout SplitMix64) -> UploadID {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<2 {
            var word = random.next()
            for _ in 0..<8 {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        // 16 bytes as unpadded URL-safe base64: 22 characters.
        var text: [UInt8] = []
        var index = 0
        while index < 16 {
            let chunk = bytes[index..<min(index + 3, 16)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << (16 - 8 * offset) }
            let characters = chunk.count + 1
            for position in 0..<characters {
                text.append(alphabet[Int((value >> (18 - 6 * position)) & 0x3F)])
            }
            index += 3
        }
        return UploadID(validating: String(decoding: text, as: UTF8.self))!
    }

    private static func legacyID(_ random: inout SplitMix64) -> UploadID {
        UploadID(validating: String(10_000_000 + random.next() % 89_999_999))!
    }
}

/// Parses the JSON:API body of `POST /uploads/bulk/destroy`; `nil` when it is not one.
enum BulkDestroyBody {
    static func parse(_ bytes: [UInt8]) -> [String]? {
        struct Reference: Decodable {
            var type: String
            var id: String
        }
        struct Uploads: Decodable { var data: [Reference] }
        struct Relationships: Decodable { var uploads: Uploads }
        struct Operation: Decodable {
            var type: String
            var relationships: Relationships
        }
        struct Document: Decodable { var data: Operation }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(bytes)),
            document.data.type == "upload_bulk_destroy_operation",
            document.data.relationships.uploads.data.allSatisfy({ $0.type == "upload" })
        else { return nil }
        return document.data.relationships.uploads.data.map(\.id)
    }
}

extension Duration {
    var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
