import ArgumentParser
import DatoCMSSimulator

/// The simulator's fault knobs as command-line options, shared by `demo` and `simulator`.
struct FaultOptions: ParsableArguments {
    @Option(help: "Fraction of API requests answered 500 with an HTML body.")
    var serverErrors = 0.0

    @Option(help: "Fraction of API requests answered 503 with a transient error.")
    var unavailable = 0.0

    @Option(help: "Fraction of API requests answered 429 as if DatoCMS were under load.")
    var loadShedding = 0.0

    @Option(help: "Fraction of bulk deletions whose response is lost after the job started.")
    var lostResponses = 0.0

    @Option(help: "Fraction of jobs that finish with status 500.")
    var failedJobs = 0.0

    func validate() throws {
        for (name, value) in [
            ("--server-errors", serverErrors), ("--unavailable", unavailable), ("--load-shedding", loadShedding),
            ("--lost-responses", lostResponses), ("--failed-jobs", failedJobs),
        ] where !(0...1).contains(value) {
            throw ValidationError("\(name) must be a fraction from 0 to 1")
        }
    }

    /// The simulator's faults as given.
    var faults: SimulatorFaults {
        SimulatorFaults(
            serverError500Html: serverErrors, unavailable503Transient: unavailable, loadShedding429: loadShedding,
            lostPostResponse: lostResponses, failedJob500: failedJobs)
    }
}
