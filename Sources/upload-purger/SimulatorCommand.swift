import ArgumentParser
import DatoCMS
import DatoCMSSimulator
import Foundation
import Logging
import PurgerCommandLine
import ServiceLifecycle

/// `upload-purger simulator`: the CMA simulator as a standalone HTTP server, for local stacks and users' tests.
struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Serve the DatoCMS CMA subset the worker uses (bulk destroy, job results, uploads) over HTTP.",
        discussion: """
            Seeds each environment with uploads in DatoCMS's id format, a fraction of them in use by records. \
            Rate-limits per token with the real X-RateLimit headers, runs jobs that take a configurable time, \
            and injects faults on request. GET /_simulator/stats reports what it saw. Stops on SIGINT/SIGTERM.
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(help: "The API token clients must send (default: a random one, printed).") var token: String?
    @Option(help: "Sandbox environments besides the primary one (repeatable).") var environment: [String] = [
        "staging"
    ]
    @Option(help: "Uploads seeded per environment.") var uploads = 10_000
    @Option(help: "Fraction of uploads in use by records (their deletion fails).") var inUse = 0.1
    @Option(help: "Seed for the upload ids.") var seed: UInt64 = 42
    @Option(help: "Request budget per token.") var rateLimit = "60/3s"
    @Option(help: "Job duration: base milliseconds...") var jobBaseMs = 800
    @Option(help: "...plus milliseconds per upload.") var jobPerUploadMs = 5
    @OptionGroup(title: "Faults") var faultOptions: FaultOptions
    @Option(name: .customLong("print-ids"), help: "Print this many seeded upload ids per environment, to enqueue.")
    var printIDs = 0

    func run() async throws {
        guard let limit = RateLimit(parsing: rateLimit) else {
            throw ValidationError("--rate-limit must look like 60/3s")
        }
        LoggingSystem.bootstrap(format: .text, level: .warning)
        let logger = Logger(label: "upload-purger.simulator")
        let token = self.token ?? "sim-\(UUID().uuidString.lowercased())"
        let simulator = CMASimulator(
            configuration: SimulatorConfiguration(
                host: host, port: port, apiToken: token, environments: [nil] + environment.map { Optional($0) },
                uploadsPerEnvironment: uploads, inUseFraction: inUse, seed: seed, rateLimit: limit,
                jobBaseDuration: .milliseconds(jobBaseMs), jobPerUploadDuration: .milliseconds(jobPerUploadMs),
                faults: faultOptions.faults),
            logger: logger)
        let banner = Banner(token: token, environments: environment, printIDs: printIDs)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [SimulatorService(simulator: simulator, banner: banner)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Serves until the service group shuts down gracefully (SIGTERM, SIGINT): the server stops accepting, finishes
/// open requests and returns, so the command exits 0 without an error line.
private struct SimulatorService: Service {
    let simulator: CMASimulator
    let banner: Banner

    func run() async throws {
        try await simulator.run { baseURL in banner.write(baseURL: baseURL, simulator: simulator) }
    }
}

/// What the simulator prints once it listens: what a worker needs to use it.
private struct Banner: Sendable {
    let token: String
    let environments: [String]
    let printIDs: Int

    /// Writes the banner to standard output at once. `print` would go through stdio, which buffers whole blocks
    /// when standard output is a pipe (`docker compose logs` would show nothing until the simulator exits).
    func write(baseURL: String, simulator: CMASimulator) {
        var lines = [
            "CMA simulator listening",
            "  DATOCMS_BASE_URL=\(baseURL)",
            "  DATOCMS_API_TOKEN=\(token)",
            // Pushed job results: the same port serves the Pusher websocket (a worker takes ws:// on loopback only).
            "  DATOCMS_PUSH_URL=\(CMASimulator.pushURL(baseURL: baseURL))",
            "  environments: (primary)\(environments.map { ", \($0)" }.joined())",
            "  stats: \(baseURL)/_simulator/stats",
        ]
        if printIDs > 0 {
            for name in [nil] + environments.map({ Optional($0) }) {
                let ids = simulator.uploadIDs(environment: name).prefix(printIDs).map(\.rawValue)
                lines.append("  ids in \(name ?? "(primary)"): \(ids.joined(separator: " "))")
            }
        }
        FileHandle.standardOutput.write(Data(lines.map { $0 + "\n" }.joined().utf8))
    }
}
