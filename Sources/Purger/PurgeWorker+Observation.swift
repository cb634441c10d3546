// Health checks, tests and diagnostics read the worker through a copy of the machine's observable state, taken after
// every event.
import Synchronization

extension PurgeWorker {
    /// What health checks and tests read.
    struct Observation {
        var consuming = false
        var apiAnswered = false
        var assigned = 0
        var paused = 0
        var runningJobs = 0
        var publishing = 0
        var pendingIDs = 0
        var peakRunningJobs = 0
        var peakPendingIDs = 0
        var pauses = 0
        var limit = 0
        var limitReason: InFlightLimiter.Reason?
    }

    /// The consume loop is running and has not failed.
    public var isAlive: Bool { observed.withLock { $0.consuming } }

    /// The worker owns partitions and the API has answered.
    public var isReady: Bool { observed.withLock { $0.consuming && $0.apiAnswered && $0.assigned > 0 } }

    /// Submitted bulk operations whose completion event is not acknowledged yet. A snapshot, for tests and
    /// diagnostics.
    public var inFlightCount: Int { observed.withLock { $0.runningJobs + $0.publishing } }

    /// The most jobs that were ever submitted and not finished at once (never above the configured bound).
    public var peakRunningJobs: Int { observed.withLock { $0.peakRunningJobs } }

    /// The most ids that ever waited in pending batches at once.
    public var peakPendingCount: Int { observed.withLock { $0.peakPendingIDs } }

    /// The bound on jobs in flight now. A snapshot, for tests and diagnostics.
    public var inFlightLimit: Int { observed.withLock { $0.limit } }

    /// How often the worker paused consumption for backpressure.
    public var pauseCount: Int { observed.withLock { $0.pauses } }

    /// Ids waiting in pending batches over all environments. A snapshot, for tests and diagnostics.
    public var pendingCount: Int { observed.withLock { $0.pendingIDs } }

    /// Partitions this member has paused. A snapshot, for tests and diagnostics.
    public var pausedPartitionCount: Int { observed.withLock { $0.paused } }

    /// Partitions this member owns now. A snapshot, for tests and diagnostics.
    public var assignedPartitionCount: Int { observed.withLock { $0.assigned } }

    func observe(_ machine: PipelineStateMachine) {
        metrics.inFlightJobs.record(machine.runningJobs)
        metrics.pausedPartitions.record(machine.paused.count)
        let limitChanged = observed.withLock { observed in
            defer { (observed.limit, observed.limitReason) = (machine.inFlightLimit, machine.limiter?.reason) }
            return observed.limit != machine.inFlightLimit || observed.limitReason != machine.limiter?.reason
        }
        if limitChanged {
            metrics.inFlightLimit(machine.inFlightLimit, reason: machine.limiter?.reason)
            logger.debug(
                "Jobs in flight: at most \(machine.inFlightLimit)",
                metadata: ["reason": "\(machine.limiter?.reason.rawValue ?? "fixed")"])
        }
        observed.withLock {
            $0.apiAnswered = machine.apiAnswered
            $0.assigned = machine.assigned.count
            $0.paused = machine.paused.count
            $0.runningJobs = machine.runningJobs
            $0.publishing = machine.publishingBatches
            $0.pendingIDs = machine.pendingIDs
            $0.peakRunningJobs = machine.peakRunningJobs
            $0.peakPendingIDs = machine.peakPendingIDs
            $0.pauses = machine.pauses
        }
    }
}
