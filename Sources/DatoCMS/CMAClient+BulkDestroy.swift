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

    /// Deletes `ids` (duplicates ignored) as one bulk operation, end to end, and tells each id's fate: deleted by
    /// this operation, not found (absent before it ran), or still present.
    ///
    /// - Ids in `knownGone` (confirmed absent a moment ago) are not sent: they count as not found.
    /// - Submits in chunks of at most 200 ids, rate-limited, retrying 429s (after their reset), 5xx, transient
    ///   errors and network errors until ``CMAClientConfiguration/retryDeadline``.
    /// - Polls each job on the ``PollScheduler``'s learned schedule until it finishes or
    ///   ``CMAClientConfiguration/jobTimeout`` passes (`timed_out`).
    /// - **Exact outcomes.** DatoCMS reports only counts: `meta.successful` ids deleted, `meta.failed` not deleted,
    ///   in use and already absent alike. When a job reports failures, one lookup (`GET /uploads?filter[ids]=…`)
    ///   names the ids still present; the rest of the failed ones were not found. If that lookup fails after its
    ///   retries, the failures are counted as still present, unnamed, and the counts are ``BulkDestroyOutcome/Counts/inferred``.
    /// - **Lost responses.** When a POST may have reached the server but its answer was lost, it is never re-sent as
    ///   is: after waiting the predicted job duration, one lookup finds which ids still exist; only those are
    ///   resubmitted. The ids already gone may have been deleted by the job we cannot name or have been absent
    ///   before: they count as not found and the counts as inferred. A job that finishes with a 5xx status is
    ///   recovered the same way.
    /// - **Bisection.** A non-retryable 4xx for several ids (one id the API refuses) splits the batch in halves and
    ///   submits each, so one bad id cannot fail the others; a single refused id is still present.
    ///
    /// Every outcome but a rejected token is a value: `deleted + notFound + stillPresent == requested` always.
    /// - Throws: ``CMAError`` of kind `.fatal` when the API rejects the token (401/403).
    public func destroyUploads(
        _ ids: [UploadID], environment: String?, knownGone: Set<UploadID> = []
    ) async throws(CMAError) -> BulkDestroyOutcome {
        let environment = resolved(environment)
        var seen: Set<UploadID> = []
        let distinct = ids.filter { seen.insert($0).inserted }
        var run = BulkRun()
        let skipped = distinct.filter { knownGone.contains($0) }
        if !skipped.isEmpty {
            run.parts.append(Part(kind: .completed, notFound: skipped.count, gone: skipped))
        }
        let toSend = distinct.filter { !knownGone.contains($0) }
        var start = 0
        while start < toSend.count {
            let chunk = Array(toSend[start..<min(start + Self.maximumBulkSize, toSend.count)])
            start += chunk.count
            try await destroyBatch(chunk, environment: environment, run: &run, recoveryRound: 0)
        }
        return run.outcome(requested: distinct.count, completedAt: Date())
    }

    /// What happened to one part of the ids.
    struct Part {
        enum Kind { case completed, rejected, timedOut }
        var kind: Kind
        /// Deleted by this part's job (its `meta.successful`).
        var deleted = 0
        /// Absent, not deleted by this part's job.
        var notFound = 0
        /// Still present, named.
        var stillPresent: [UploadID] = []
        /// Of unknown state: counted as still present, not named.
        var unknown = 0
        /// Ids confirmed absent.
        var gone: [UploadID] = []
        /// Whether `deleted` and `notFound` are certain and `unknown` is 0.
        var exact = true
        var error: String?
        var jobStatus: Int?
    }

    /// Accumulates the parts and counters of one ``destroyUploads(_:environment:knownGone:)`` call.
    struct BulkRun {
        var parts: [Part] = []
        var jobIDs: [JobID] = []
        var attempts = 0
        var polls = 0
        var lookups = 0
        var submittedAt: Date?

        func outcome(requested: Int, completedAt: Date) -> BulkDestroyOutcome {
            let status: BulkDestroyOutcome.Status
            if parts.contains(where: { $0.kind == .timedOut }) {
                status = .timedOut
            } else if parts.contains(where: { $0.kind == .completed }) || parts.isEmpty {
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
            let stillPresent = parts.flatMap(\.stillPresent)
            let unknown = parts.reduce(0) { $0 + $1.unknown }
            return BulkDestroyOutcome(
                status: status, jobIDs: jobIDs, jobStatus: parts.compactMap(\.jobStatus).max(),
                requested: requested, deleted: parts.reduce(0) { $0 + $1.deleted },
                notFound: parts.reduce(0) { $0 + $1.notFound }, stillPresent: stillPresent.count + unknown,
                stillPresentIDs: unknown == 0 ? stillPresent.sorted() : nil,
                counts: parts.allSatisfy(\.exact) ? .exact : .inferred, goneIDs: parts.flatMap(\.gone),
                error: error, attempts: attempts, polls: polls, lookups: lookups, submittedAt: submittedAt,
                completedAt: completedAt)
        }
    }

    // MARK: - One batch

    /// Submits `ids` and records their fate. `recoveryRound` > 0 when they are resubmitted after a lost response
    /// or a failed job: then ids the job finds absent may have been deleted by the earlier job.
    private func destroyBatch(
        _ ids: [UploadID], environment: String?, run: inout BulkRun, recoveryRound: Int
    ) async throws(CMAError) {
        if run.submittedAt == nil { run.submittedAt = Date() }
        // Subscribed before the job exists, so that its result cannot be published unheard.
        let channel = try await pushChannel(for: environment)
        let submission: Submission
        do {
            submission = try await submit(ids, environment: environment, attempts: &run.attempts)
        } catch  where error.kind == .rejected {
            try await handleRejection(
                error, ids: ids, environment: environment, run: &run, recoveryRound: recoveryRound)
            return
        } catch  where error.kind == .retryable {
            run.parts.append(Part(kind: .timedOut, unknown: ids.count, exact: false, error: "\(error)"))
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
                    job, uploads: ids.count, environment: environment, channel: channel,
                    acceptedAt: acceptedAt, run: &run)
            else {
                run.parts.append(
                    Part(
                        kind: .timedOut, unknown: ids.count, exact: false,
                        error: "JOB_TIMEOUT: no result for job \(job) within \(configuration.jobTimeout)"))
                return
            }
            if finished.succeeded {
                try await completeFinished(
                    finished, ids: ids, environment: environment, run: &run, recoveryRound: recoveryRound)
            } else if (400..<500).contains(finished.status), ![401, 403].contains(finished.status) {
                let error = CMAError(
                    kind: .rejected, httpStatus: finished.status, code: nil,
                    message: finished.error ?? "HTTP \(finished.status)")
                try await handleRejection(
                    error, ids: ids, environment: environment, run: &run, recoveryRound: recoveryRound)
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

    /// Counts a job that finished with a 2xx status: its `meta.successful` were deleted; a lookup splits the rest
    /// into still present (named) and not found.
    private func completeFinished(
        _ finished: FinishedJob, ids: [UploadID], environment: String?, run: inout BulkRun, recoveryRound: Int
    ) async throws(CMAError) {
        let deleted = min(max(finished.successful ?? (ids.count - (finished.failed ?? 0)), 0), ids.count)
        let notDeleted = ids.count - deleted
        guard notDeleted > 0 else {
            run.parts.append(Part(kind: .completed, deleted: deleted, gone: ids, jobStatus: finished.status))
            return
        }
        let existing: Set<UploadID>
        do {
            existing = try await lookupExisting(ids, environment: environment, requests: &run.lookups)
        } catch  where error.kind != .fatal {
            logger.warning("Could not look up which uploads still exist", metadata: ["error": "\(error)"])
            run.parts.append(
                Part(
                    kind: .completed, deleted: deleted, unknown: notDeleted, exact: false,
                    jobStatus: finished.status))
            return
        }
        let present = ids.filter { existing.contains($0) }
        let gone = ids.filter { !existing.contains($0) }
        // More ids present than the job left (some came back, or a count is off): the ids are still named, and
        // what the job deleted is bounded by what is gone.
        let consistent = present.count <= notDeleted
        let attributed = consistent ? deleted : gone.count
        // After a lost response, ids this job found absent may have been deleted by the lost job.
        run.parts.append(
            Part(
                kind: .completed, deleted: attributed, notFound: gone.count - attributed, stillPresent: present,
                gone: gone, exact: consistent && (recoveryRound == 0 || gone.count == attributed),
                jobStatus: finished.status))
    }

    /// Splits a refused batch, or records a single refused id as still present.
    private func handleRejection(
        _ error: CMAError, ids: [UploadID], environment: String?, run: inout BulkRun, recoveryRound: Int
    ) async throws(CMAError) {
        let batchWide = error.code.map { Self.batchWideErrorCodes.contains($0) } ?? false
        if ids.count > 1, !batchWide, error.httpStatus.map({ $0 != 404 && $0 != 405 && $0 != 415 }) ?? true {
            state.withLock { $0.statistics.bisections += 1 }
            logger.info(
                "Bulk destroy refused; splitting the batch",
                metadata: ["uploads": "\(ids.count)", "error": "\(error)"])
            let middle = ids.count / 2
            try await destroyBatch(
                Array(ids[..<middle]), environment: environment, run: &run, recoveryRound: recoveryRound)
            try await destroyBatch(
                Array(ids[middle...]), environment: environment, run: &run, recoveryRound: recoveryRound)
            return
        }
        logger.warning(
            "Bulk destroy refused", metadata: ["uploads": "\(ids.count)", "error": "\(error)"])
        run.parts.append(Part(kind: .rejected, stillPresent: ids, error: "\(error)"))
    }

    /// After a lost response or a failed job: ids gone are not found (perhaps deleted by the job we lost), the rest
    /// are resubmitted.
    private func recover(
        _ ids: [UploadID], environment: String?, run: inout BulkRun, recoveryRound: Int, reason: String,
        jobStatus: Int? = nil
    ) async throws(CMAError) {
        let existing: Set<UploadID>
        do {
            existing = try await lookupExisting(ids, environment: environment, requests: &run.lookups)
        } catch  where error.kind != .fatal {
            run.parts.append(Part(kind: .timedOut, unknown: ids.count, exact: false, error: reason))
            return
        }
        let remaining = ids.filter { existing.contains($0) }
        let gone = ids.filter { !existing.contains($0) }
        if !gone.isEmpty {
            run.parts.append(
                Part(kind: .completed, notFound: gone.count, gone: gone, exact: false, jobStatus: jobStatus))
        }
        guard !remaining.isEmpty else { return }
        guard recoveryRound < Self.maximumRecoveryRounds else {
            run.parts.append(
                Part(
                    kind: jobStatus == nil ? .timedOut : .completed, stillPresent: remaining, error: reason,
                    jobStatus: jobStatus))
            return
        }
        logger.info(
            "Resubmitting uploads that still exist",
            metadata: ["uploads": "\(remaining.count)", "already_gone": "\(gone.count)"])
        try await destroyBatch(remaining, environment: environment, run: &run, recoveryRound: recoveryRound + 1)
    }

    // MARK: - Awaiting results

    /// Waits for the job's result until it finishes (its result) or the job timeout passes (`nil`).
    ///
    /// Polled on the ``PollScheduler``'s schedule, unless its push `channel` is subscribed: then its pushed result
    /// is awaited, and a poll goes out only as the safety net — when the result is later than the predicted
    /// duration plus a margin (an event lost), once after the channel is subscribed again (events of the gap are
    /// lost), on the poll schedule while the channel is down, and for a result too large to be pushed (413).
    /// Whichever comes first, push or poll, is the result; the other is never seen.
    private func awaitJob(
        _ job: JobID, uploads: Int, environment: String?, channel: String?,
        acceptedAt: ContinuousClock.Instant, run: inout BulkRun
    ) async throws(CMAError) -> FinishedJob? {
        let deadline = acceptedAt + configuration.jobTimeout
        let (plannedFirstPoll, predicted) = state.withLock {
            ($0.pollScheduler.firstPollDelay(uploads: uploads), $0.pollScheduler.predictedDuration(uploads: uploads))
        }
        // The safety net's margin: half the prediction, at least a second.
        let margin = max(predicted * 0.5, .seconds(1))
        let push = channel.flatMap { channel in self.push.map { (channel: channel, results: $0) } }
        var pushed = push.map { $0.results.isSubscribed($0.channel) } ?? false
        if let push { push.results.register(job, channel: push.channel) }
        defer { push?.results.unregister(job) }
        var next = acceptedAt + (pushed ? predicted + margin : plannedFirstPoll)
        var misses = 0
        var lastMissAt: Duration?
        var polls = 0
        while true {
            if next > deadline { next = deadline }
            if let push {
                let signals = await push.results.next(job, until: next)
                if Task.isCancelled { return nil }
                for signal in signals {
                    switch signal {
                    case .result(.finished(_, let finished), let at):
                        let duration = at - acceptedAt
                        state.withLock {
                            $0.pollScheduler.recordObservedDuration(uploads: uploads, duration: duration)
                            $0.statistics.pushedResults += 1
                        }
                        noteFinished(job, finished, after: duration, polls: polls, source: "push")
                        return finished
                    case .result(.tooLarge, _), .resubscribed:
                        pushed = push.results.isSubscribed(push.channel)
                        next = clock.now
                    case .lost:
                        pushed = false
                        next = min(next, max(clock.now, acceptedAt + plannedFirstPoll))
                    }
                }
                if clock.now < next { continue }
            } else {
                do {
                    try await sleep(until: next)
                } catch {
                    return nil
                }
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
                    // A poll that found the job only because its pushed result was late says little of when
                    // polls should go out; it is learned from only when the job was polled on the schedule.
                    if push == nil || !pushed {
                        $0.pollScheduler.recordCompletion(
                            uploads: uploads, plannedFirstPoll: plannedFirstPoll, lastMissAt: lastMissAt,
                            foundAt: foundAt)
                    }
                }
                noteFinished(job, finished, after: foundAt, polls: polls, source: "poll")
                return finished
            case .pending:
                if sentAt >= deadline || clock.now >= deadline { return nil }
                misses += 1
                lastMissAt = sentAt - acceptedAt
                if pushed {
                    next = max(sentAt + margin, acceptedAt + predicted + margin)
                } else {
                    next =
                        sentAt
                        + state.withLock {
                            $0.pollScheduler.delayAfterMiss(
                                uploads: uploads, misses: misses, elapsed: sentAt - acceptedAt)
                        }
                }
            }
        }
    }

    /// Counts, measures and logs a finished job, whichever way its result came.
    private func noteFinished(
        _ job: JobID, _ finished: FinishedJob, after duration: Duration, polls: Int, source: String
    ) {
        state.withLock {
            $0.statistics.jobsFinished += 1
            $0.statistics.pollsForFinishedJobs += polls
        }
        CMAMetrics.recordFinishedJob(duration: duration, polls: polls)
        CMAMetrics.recordJobResult(source: source)
        logger.debug(
            "Bulk destroy job finished",
            metadata: [
                "job_id": "\(job)", "job_status": "\(finished.status)", "polls": "\(polls)", "source": "\(source)",
            ])
    }
}
