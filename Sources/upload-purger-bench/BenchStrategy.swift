import ArgumentParser
import DatoCMS
import DatoCMSSimulator
import Purger

/// A way of turning deletion requests into API calls, compared by `upload-purger-bench`.
enum BenchStrategy: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// One bulk operation per request, the official client's linear polling, reacting to 429s only.
    case naive
    /// The worker's batching (200 ids / 2 s) and 16 jobs in flight (the fixed default before `auto`), but the
    /// official client's linear polling, reacting to 429s only, and no memory of ids confirmed gone.
    case officialClient = "official-client"
    /// The worker as shipped (defaults: job results pushed by the simulator's websocket, an adaptive bound).
    case uploadPurger = "upload-purger"
    /// The worker as shipped but with `DATOCMS_JOB_RESULTS=poll`: job results polled.
    case uploadPurgerPoll = "upload-purger-poll"
    /// The worker as shipped but with `PURGER_MAX_IN_FLIGHT_JOBS=16`: the fixed default before `auto`.
    case uploadPurgerInFlight16 = "upload-purger-16"
    /// The worker as shipped but with `PURGER_MAX_IN_FLIGHT_JOBS=8`.
    case uploadPurgerInFlight8 = "upload-purger-8"
    /// The worker as shipped but with `PURGER_GONE_CACHE_SIZE=0`: what remembering ids confirmed gone saves.
    case uploadPurgerNoGoneCache = "upload-purger-no-gone-cache"

    /// Column heading in the table and legend in the chart.
    var title: String {
        switch self {
        case .naive: "naive (1 op/request)"
        case .officialClient: "official-client policy"
        case .uploadPurger: "upload-purger (defaults: push, auto in flight)"
        case .uploadPurgerPoll: "upload-purger, polling"
        case .uploadPurgerInFlight16: "upload-purger, 16 in flight"
        case .uploadPurgerInFlight8: "upload-purger, 8 in flight"
        case .uploadPurgerNoGoneCache: "upload-purger, no gone cache"
        }
    }

    /// Line colour in the chart.
    var colour: String {
        switch self {
        case .naive: "#d62728"
        case .officialClient: "#ff7f0e"
        case .uploadPurger: "#1f77b4"
        case .uploadPurgerPoll: "#17becf"
        case .uploadPurgerInFlight8: "#2ca02c"
        case .uploadPurgerInFlight16: "#8c564b"
        case .uploadPurgerNoGoneCache: "#9467bd"
        }
    }

    /// Whether requests go through `PurgeWorker` (else through ``BenchNaivePipeline``).
    var usesWorker: Bool { self != .naive }

    /// The client's polling, pacing and job results for this strategy (`jobResults` as the worker's configuration
    /// says); everything else stays at the defaults.
    func clientConfiguration(_ base: CMAClientConfiguration, jobResults: JobResultSource) -> CMAClientConfiguration {
        var configuration = base
        // The simulator serves the Pusher websocket on its own port.
        configuration.jobResults = self == .naive ? .poll : jobResults
        configuration.pushURL = CMASimulator.pushURL(baseURL: base.baseURL)
        switch self {
        case .naive, .officialClient:
            configuration.pollStrategy = .linear(step: .seconds(1))
            configuration.pacing = .reactiveOnly
        case .uploadPurger, .uploadPurgerPoll, .uploadPurgerInFlight16, .uploadPurgerInFlight8,
            .uploadPurgerNoGoneCache:
            break
        }
        return configuration
    }

    /// The worker's configuration for this strategy (the worker reads it through `PurgeWorker.Settings`).
    func workerConfiguration(_ base: PurgerConfiguration) -> PurgerConfiguration {
        var configuration = base
        switch self {
        case .uploadPurgerInFlight8: configuration.maxInFlightJobs = .fixed(8)
        case .uploadPurgerInFlight16: configuration.maxInFlightJobs = .fixed(16)
        // The official client remembers nothing between operations, has no adaptive bound, and polls.
        case .officialClient:
            configuration.goneCacheSize = 0
            configuration.maxInFlightJobs = .fixed(16)
            configuration.jobResults = .poll
        case .uploadPurgerNoGoneCache: configuration.goneCacheSize = 0
        case .uploadPurgerPoll: configuration.jobResults = .poll
        case .naive, .uploadPurger: break
        }
        return configuration
    }
}
