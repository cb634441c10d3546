#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// MARK: - Bulk destroy

extension CMAClient {
    /// Error codes that condemn the whole request, not one of its ids: splitting the batch cannot help.
    static let batchWideErrorCodes: Set<String> = [
        "INVALID_ENVIRONMENT", "INVALID_API_VERSION", "INVALID_AUTHORIZATION_HEADER", "INSUFFICIENT_PERMISSIONS",
        "NOT_FOUND", "MAINTENANCE_MODE", "MISSING_UPLOAD_IDS", "RATE_LIMIT_EXCEEDED",
    ]
    /// How often one batch is resubmitted after lost responses or failed (5xx) jobs before giving up.
    static let maximumRecoveryRounds = 4

    /// Deletes `ids` (duplicates ignored) as one bulk operation, end to end.
    ///
    /// - Submits in chunks of at most 200 ids, rate-limited, retrying 429s (after their reset), 5xx, transient
    ///   errors and network errors until ``CMAClientConfiguration/retryDeadline``.
    /// - Polls each job on the ``PollScheduler``'s learned schedule until it finishes or
    ///   ``CMAClientConfiguration/jobTimeout`` passes (`timed_out`).
    /// - **Lost responses.** When a POST may have reached the server but its answer was lost, it is never re-sent as
    ///   is: after waiting the predicted job duration, one lookup finds which ids still exist; ids already gone count
    ///   as deleted and only the others are resubmitted. For such a batch the final counts come from a last lookup
    ///   (ids still existing failed, the rest were deleted), so they stay exact even if the lost job was still
    ///   running. Trade-off: an id that never existed is indistinguishable from one the lost job deleted, so on this
    ///   rare path it is counted as deleted. A job that finishes with a 5xx status is recovered the same way.
    /// - **Bisection.** A non-retryable 4xx for several ids (one id the API refuses) splits the batch in halves and
    ///   submits each, so one bad id cannot fail the others; a single refused id counts as failed.
    /// - **Failure attribution.** When a job reports failures and ``CMAClientConfiguration/attributeFailures`` is on,
    ///   one lookup names them: `failedUploadIDs` is set when the ids still existing match the failed count
    ///   (unknown ids cannot be told apart from deleted ones, so a mismatch leaves it `nil`).
    ///
    /// Every outcome but a rejected token is a value: `successful + failed == requested` always.
    /// - Throws: ``CMAError`` of kind `.fatal` when the API rejects the token (401/403).
    public func destroyUploads(_ ids: [UploadID], environment: String?) async throws(CMAError) -> BulkDestroyOutcome {
        let environment = resolved(environment)
        var seen: Set<UploadID> = []
        let distinct = ids.filter { seen.insert($0).inserted }
        var run = BulkRun()
        var start = 0
        while start < distinct.count {
            let chunk = Array(distinct[start..<min(start + Self.maximumBulkSize, distinct.count)])
            start += chunk.count
            try await destroyBatch(chunk, environment: environment, run: &run, recoveryRound: 0, countByLookup: false)
        }
        return run.outcome(requested: distinct.count, completedAt: Date())
    }

    /// What happened to one part of the ids.
    struct Part {
        enum Kind { case completed, rejected, timedOut }
        var kind: Kind
        var successful: Int
        var failedIDs: [UploadID]
        /// Whether `failedIDs` names the failed ids (else only its count is known).
        var failedIDsKnown: Bool
        var error: String?
        var jobStatus: Int?
    }

    /// Accumulates the parts and counters of one ``destroyUploads(_:environment:)`` call.
    struct BulkRun {
        var parts: [Part] = []
        var jobIDs: [JobID] = []
        var attempts = 0
        var polls = 0
        var submittedAt: Date?

        func outcome(requested: Int, completedAt: Date) -> BulkDestroyOutcome {
            let successful = parts.reduce(0) { $0 + $1.successful }
            let failedIDs = parts.flatMap(\.failedIDs)
            let status: BulkDestroyOutcome.Status
            if parts.contains(where: { $0.kind == .timedOut }) {
                status = .timedOut
            } else if parts.contains(where: { $0.kind == .completed }) {
                status = .completed
            } else if parts.isEmpty {
                status = .completed
            } else {
                status = .rejected
            }
            let error: String?
            switch status {
            case .completed:
                error = parts.compactMap { $0.kind == .completed ? $0.error : nil }.first
            case .rejected, .timedOut:
                error =
                    parts.compactMap { $0.kind == (status == .rejected ? .rejected : .timedOut) ? $0.error : nil }
                    .first
            }
            return BulkDestroyOutcome(
                status: status, jobIDs: jobIDs, jobStatus: parts.compactMap(\.jobStatus).max(),
                requested: requested, successful: successful, failed: failedIDs.count,
                failedUploadIDs: parts.allSatisfy(\.failedIDsKnown) ? failedIDs.sorted() : nil, error: error,
                attempts: attempts, polls: polls, submittedAt: submittedAt, completedAt: completedAt)
        }
    }

    // MARK: - One batch

    private func destroyBatch(
        _ ids: [UploadID], environment: String?, run: inout BulkRun, recoveryRound: Int, countByLookup: Bool
    ) async throws(CMAError) {
        if run.submittedAt == nil { run.submittedAt = Date() }
        let submission: Submission
        do {
            submission = try await submit(ids, environment: environment, attempts: &run.attempts)
        } catch  where error.kind == .rejected {
            try await handleRejection(
                error, ids: ids, environment: environment, run: &run, countByLookup: countByLookup)
            return
        } catch  where error.kind == .retryable {
            run.parts.append(
                Part(kind: .timedOut, successful: 0, failedIDs: ids, failedIDsKnown: false, error: "\(error)"))
            return
        }
        switch submission {
        case .lost(let reason):
            logger.warning(
                "Bulk destroy response lost; checking which uploads still exist",
                metadata: ["uploads": "\(ids.count)", "reason": "\(reason)"])
            // Give the job we cannot name time to finish before looking, so it is not resubmitted needlessly.
            let wait = state.withLock { $0.pollScheduler.firstPollDelay(uploads: ids.count) }
            // If cancelled, the lookup below fails fast and the ids are recorded as timed out.
            try? await sleep(for: wait)
            try await recover(
                ids, environment: environment, run: &run, recoveryRound: recoveryRound,
                reason: "LOST_RESPONSE: \(reason)"
            )
        case .job(let job, let acceptedAt):
            run.jobIDs.append(job)
            logger.debug("Bulk destroy job started", metadata: ["job_id": "\(job)", "uploads": "\(ids.count)"])
            guard
                let finished = try await awaitJob(
                    job, uploads: ids.count, environment: environment,
                    acceptedAt: acceptedAt, run: &run)
            else {
                run.parts.append(
                    Part(
                        kind: .timedOut, successful: 0, failedIDs: ids, failedIDsKnown: false,
                        error: "JOB_TIMEOUT: no result for job \(job) within \(configuration.jobTimeout)"))
                return
            }
            if finished.succeeded {
                try await completeFinished(
                    finished, ids: ids, environment: environment, run: &run, countByLookup: countByLookup)
            } else if (400..<500).contains(finished.status), ![401, 403].contains(finished.status) {
                let error = CMAError(
                    kind: .rejected, httpStatus: finished.status, code: nil,
                    message: finished.error ?? "HTTP \(finished.status)")
                try await handleRejection(
                    error, ids: ids, environment: environment, run: &run, countByLookup: countByLookup)
            } else {
                logger.warning(
                    "Bulk destroy job failed; checking which uploads still exist",
                    metadata: ["job_id": "\(job)", "job_status": "\(finished.status)"])
                try await recover(
                    ids, environment: environment, run: &run, recoveryRound: recoveryRound,
                    reason: finished.error ?? "HTTP \(finished.status)", jobStatus: finished.status)
            }
        }
    }

    /// Counts a job that finished with a 2xx status.
    private func completeFinished(
        _ finished: FinishedJob, ids: [UploadID], environment: String?, run: inout BulkRun, countByLookup: Bool
    ) async throws(CMAError) {
        let reportedFailed = min(max(finished.failed ?? (ids.count - (finished.successful ?? ids.count)), 0), ids.count)
        let needsLookup = countByLookup || (reportedFailed > 0 && configuration.attributeFailures)
        var existing: Set<UploadID>?
        if needsLookup {
            do {
                existing = try await lookupExisting(ids, environment: environment)
            } catch  where error.kind != .fatal {
                logger.warning("Could not look up failed uploads", metadata: ["error": "\(error)"])
            }
        }
        if countByLookup, let existing {
            let failed = ids.filter { existing.contains($0) }
            run.parts.append(
                Part(
                    kind: .completed, successful: ids.count - failed.count, failedIDs: failed, failedIDsKnown: true,
                    jobStatus: finished.status))
            return
        }
        let failedIDs: [UploadID]
        let known: Bool
        if let existing, existing.count == reportedFailed {
            failedIDs = ids.filter { existing.contains($0) }
            known = true
        } else {
            // Only the count is known; these placeholders carry it, and the outcome reports no ids.
            failedIDs = Array(ids.suffix(reportedFailed))
            known = reportedFailed == 0
            if let existing {
                logger.debug(
                    "Failed uploads could not all be named",
                    metadata: ["reported_failed": "\(reportedFailed)", "still_existing": "\(existing.count)"])
            }
        }
        run.parts.append(
            Part(
                kind: .completed, successful: ids.count - failedIDs.count, failedIDs: failedIDs,
                failedIDsKnown: known, jobStatus: finished.status))
    }

    /// Splits a refused batch, or records a single refused id.
    private func handleRejection(
        _ error: CMAError, ids: [UploadID], environment: String?, run: inout BulkRun, countByLookup: Bool
    ) async throws(CMAError) {
        let batchWide = error.code.map { Self.batchWideErrorCodes.contains($0) } ?? false
        if ids.count > 1, !batchWide, error.httpStatus.map({ $0 != 404 && $0 != 405 && $0 != 415 }) ?? true {
            state.withLock { $0.statistics.bisections += 1 }
            logger.info(
                "Bulk destroy refused; splitting the batch",
                metadata: ["uploads": "\(ids.count)", "error": "\(error)"])
            let middle = ids.count / 2
            try await destroyBatch(
                Array(ids[..<middle]), environment: environment, run: &run, recoveryRound: 0,
                countByLookup: countByLookup)
            try await destroyBatch(
                Array(ids[middle...]), environment: environment, run: &run, recoveryRound: 0,
                countByLookup: countByLookup)
            return
        }
        logger.warning(
            "Bulk destroy refused", metadata: ["uploads": "\(ids.count)", "error": "\(error)"])
        run.parts.append(
            Part(
                kind: .rejected, successful: 0, failedIDs: ids, failedIDsKnown: true, error: "\(error)",
                jobStatus: nil))
    }

    /// After a lost response or a failed job: ids gone count as deleted, the rest are resubmitted.
    private func recover(
        _ ids: [UploadID], environment: String?, run: inout BulkRun, recoveryRound: Int, reason: String,
        jobStatus: Int? = nil
    ) async throws(CMAError) {
        let existing: Set<UploadID>
        do {
            existing = try await lookupExisting(ids, environment: environment)
        } catch  where error.kind != .fatal {
            run.parts.append(
                Part(kind: .timedOut, successful: 0, failedIDs: ids, failedIDsKnown: false, error: reason))
            return
        }
        let remaining = ids.filter { existing.contains($0) }
        let gone = ids.count - remaining.count
        if gone > 0 {
            run.parts.append(
                Part(kind: .completed, successful: gone, failedIDs: [], failedIDsKnown: true, jobStatus: jobStatus))
        }
        guard !remaining.isEmpty else { return }
        guard recoveryRound < Self.maximumRecoveryRounds else {
            run.parts.append(
                Part(
                    kind: jobStatus == nil ? .timedOut : .completed, successful: 0, failedIDs: remaining,
                    failedIDsKnown: true, error: reason, jobStatus: jobStatus))
            return
        }
        logger.info(
            "Resubmitting uploads that still exist",
            metadata: ["uploads": "\(remaining.count)", "already_gone": "\(gone)"])
        try await destroyBatch(
            remaining, environment: environment, run: &run, recoveryRound: recoveryRound + 1, countByLookup: true)
    }

    // MARK: - Polling

    /// Polls until the job finishes (its result) or the job timeout passes (`nil`).
    private func awaitJob(
        _ job: JobID, uploads: Int, environment: String?, acceptedAt: ContinuousClock.Instant, run: inout BulkRun
    ) async throws(CMAError) -> FinishedJob? {
        let deadline = acceptedAt + configuration.jobTimeout
        let plannedFirstPoll = state.withLock { $0.pollScheduler.firstPollDelay(uploads: uploads) }
        var next = acceptedAt + plannedFirstPoll
        var misses = 0
        var lastMissAt: Duration?
        var polls = 0
        while true {
            if next > deadline { next = deadline }
            do {
                try await sleep(until: next)
            } catch {
                return nil
            }
            let result: JobResult
            let sentAt: ContinuousClock.Instant
            do {
                (result, sentAt) = try await fetchJobResult(job, environment: environment)
            } catch  where error.kind == .fatal {
                throw error
            } catch {
                if error.code == "CANCELLED" || clock.now >= deadline { return nil }
                logger.warning(
                    "Polling job failed; will poll again", metadata: ["job_id": "\(job)", "error": "\(error)"])
                polls += 1
                run.polls += 1
                misses += 1
                next =
                    clock.now
                    + state.withLock {
                        $0.pollScheduler.delayAfterMiss(
                            uploads: uploads, misses: misses, elapsed: clock.now - acceptedAt)
                    }
                continue
            }
            polls += 1
            run.polls += 1
            switch result {
            case .finished(let finished):
                let foundAt = sentAt - acceptedAt
                state.withLock {
                    $0.pollScheduler.recordCompletion(
                        uploads: uploads, plannedFirstPoll: plannedFirstPoll, lastMissAt: lastMissAt, foundAt: foundAt)
                    $0.statistics.jobsFinished += 1
                    $0.statistics.pollsForFinishedJobs += polls
                }
                CMAMetrics.recordFinishedJob(duration: foundAt, polls: polls)
                logger.debug(
                    "Bulk destroy job finished",
                    metadata: ["job_id": "\(job)", "job_status": "\(finished.status)", "polls": "\(polls)"])
                return finished
            case .pending:
                if sentAt >= deadline || clock.now >= deadline { return nil }
                misses += 1
                lastMissAt = sentAt - acceptedAt
                next =
                    sentAt
                    + state.withLock {
                        $0.pollScheduler.delayAfterMiss(uploads: uploads, misses: misses, elapsed: sentAt - acceptedAt)
                    }
            }
        }
    }
}
