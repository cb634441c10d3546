#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// MARK: - Endpoints

extension CMAClient {
    /// The most ids one bulk operation accepts.
    public static let maximumBulkSize = 200
    /// Page size of `GET /uploads?filter[ids]=…` lookups.
    public static let lookupPageSize = 100

    enum Submission {
        case job(JobID, acceptedAt: ContinuousClock.Instant)
        case lost(reason: String)
    }

    /// Starts a bulk deletion of `ids` (1 to 200) and returns the job id.
    ///
    /// Rate-limited and retried on 429, 5xx and transient errors. Throws ``CMAError`` with kind `.retryable` and
    /// code `LOST_RESPONSE` when the request may have reached the server but no answer came back: re-sending it could
    /// start a second job, so this method never does; ``destroyUploads(_:environment:)`` recovers from that case.
    public func submitBulkDestroy(_ ids: [UploadID], environment: String?) async throws(CMAError) -> JobID {
        var attempts = 0
        switch try await submit(ids, environment: resolved(environment), attempts: &attempts) {
        case .job(let id, _):
            return id
        case .lost(let reason):
            throw CMAError(kind: .retryable, code: "LOST_RESPONSE", message: reason)
        }
    }

    /// Asks for a job's result once: `.pending` while the API answers 404.
    public func jobResult(_ job: JobID, environment: String?) async throws(CMAError) -> JobResult {
        try await fetchJobResult(job, environment: resolved(environment)).result
    }

    /// Which of `ids` exist in the environment, from paged `GET /uploads?filter[ids]=…` requests.
    public func existingUploadIDs(_ ids: [UploadID], environment: String?) async throws(CMAError) -> Set<UploadID> {
        var requests = 0
        return try await lookupExisting(ids, environment: resolved(environment), requests: &requests)
    }

    /// One cheap request (`GET /uploads?page[limit]=1`) proving the API answers and accepts the token.
    public func ping(environment: String?) async throws(CMAError) {
        _ = try await send(
            .GET, path: "/uploads", query: [("page[limit]", "1")], environment: resolved(environment),
            endpoint: .uploads, priority: .background)
    }

    // MARK: - Internals

    func resolved(_ environment: String?) -> String? {
        environment ?? configuration.defaultEnvironment
    }

    func submit(_ ids: [UploadID], environment: String?, attempts: inout Int) async throws(CMAError) -> Submission {
        precondition(!ids.isEmpty && ids.count <= Self.maximumBulkSize, "1 to 200 ids per bulk operation")
        let body: [UInt8]
        do {
            body = Array(try JSONEncoder().encode(BulkDestroyDocument(ids)))
        } catch {
            throw CMAError(kind: .rejected, message: "cannot encode request: \(error)")
        }
        var sent = 0
        let result = try await send(
            .POST, path: "/uploads/bulk/destroy", body: body, environment: environment, endpoint: .bulkDestroy,
            priority: .submission, idempotent: false, onAttempt: { sent += 1 })
        attempts += sent
        state.withLock { $0.statistics.submissions += sent }
        switch result {
        case .lost(let reason):
            state.withLock { $0.statistics.lostSubmissions += 1 }
            return .lost(reason: reason)
        case .response(let response):
            guard let document = try? JSONDecoder().decode(JobDocument.self, from: Data(response.body)) else {
                // The server accepted something but we cannot name the job: as good as a lost response.
                return .lost(reason: "unreadable \(response.status) response to bulk destroy")
            }
            return .job(JobID(document.data.id), acceptedAt: response.receivedAt)
        }
    }

    func fetchJobResult(
        _ job: JobID, environment: String?
    ) async throws(CMAError) -> (result: JobResult, sentAt: ContinuousClock.Instant) {
        let result = try await send(
            .GET, path: "/job-results/\(job.rawValue)", environment: environment, endpoint: .jobResult,
            priority: .background, acceptedStatus: { $0 == 404 })
        state.withLock { $0.statistics.polls += 1 }
        guard case .response(let response) = result else {
            throw CMAError(kind: .retryable, message: "job result request lost")
        }
        if response.status == 404 {
            return (.pending, response.sentAt)
        }
        guard let document = try? JSONDecoder().decode(JobResultDocument.self, from: Data(response.body)) else {
            throw CMAError(kind: .retryable, httpStatus: response.status, message: "unreadable job result")
        }
        let attributes = document.data.attributes
        return (.finished(FinishedJob(status: attributes.status, payload: attributes.payload)), response.sentAt)
    }

    func lookupExisting(
        _ ids: [UploadID], environment: String?, requests: inout Int
    ) async throws(CMAError) -> Set<UploadID> {
        var distinct: [UploadID] = []
        var seen: Set<UploadID> = []
        for id in ids where seen.insert(id).inserted { distinct.append(id) }
        var existing: Set<UploadID> = []
        var start = 0
        // At most one bulk operation's worth of ids per filter keeps URLs short; each filter is paged.
        while start < distinct.count {
            let slice = distinct[start..<min(start + Self.maximumBulkSize, distinct.count)]
            start += slice.count
            let wanted = Set(slice)
            let filter = slice.map(\.rawValue).joined(separator: ",")
            var offset = 0
            while true {
                let query = [
                    ("filter[ids]", filter),
                    ("page[limit]", String(Self.lookupPageSize)),
                    ("page[offset]", String(offset)),
                ]
                requests += 1
                let result = try await send(
                    .GET, path: "/uploads", query: query, environment: environment, endpoint: .uploads,
                    priority: .background)
                guard case .response(let response) = result,
                    let document = try? JSONDecoder().decode(UploadCollectionDocument.self, from: Data(response.body))
                else {
                    throw CMAError(kind: .retryable, message: "unreadable uploads collection")
                }
                for upload in document.data {
                    if let id = UploadID(validating: upload.id), wanted.contains(id) { existing.insert(id) }
                }
                offset += document.data.count
                let total = document.meta?.totalCount ?? offset
                if document.data.count < Self.lookupPageSize || offset >= total || document.data.isEmpty { break }
            }
        }
        return existing
    }
}
