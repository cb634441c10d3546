import ArgumentParser

/// What `upload-purger-bench` measures.
enum BenchScenario: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Request strategies side by side on the same workload (in process).
    case strategies
    /// The worker (in process, against a simulator that does not hold it back) against a plain consumer of the same
    /// topic.
    case consume
    /// Peak memory of one `upload-purger run` child process working through a large backlog.
    case backlog
    /// Several `upload-purger run` child processes sharing one token at saturation.
    case replicas

    /// Deletion requests when `--requests` is not given.
    var defaultRequests: Int {
        switch self {
        case .strategies: 2_000
        // The worker reading deletes every id through the simulator: 20,000 requests are about 2,000 jobs, where
        // the simulator's per-request cost (it looks at every job it has started) is still small.
        case .consume: 20_000
        case .backlog: 1_000_000
        case .replicas: 3_000
        }
    }

    /// Partitions of the requests topic when `--partitions` is not given. librdkafka's mock cluster keeps at most
    /// 5 MB per partition (older messages are dropped), so a large backlog needs many partitions.
    var defaultPartitions: Int32 {
        switch self {
        case .strategies: 3
        case .consume: 32
        case .backlog: 64
        case .replicas: 8
        }
    }

    /// The token's budget when `--rate-limit` is not given: DatoCMS's default, except for the backlog, where the
    /// worker should move quickly so that its memory is measured while it works, not while it waits.
    var defaultRateLimit: String { self == .backlog ? "1000/1s" : "60/3s" }
}
