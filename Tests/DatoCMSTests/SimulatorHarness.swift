import DatoCMS
import DatoCMSSimulator
import Logging

/// Fast simulator and client settings for tests: short jobs, generous rate limit, quick retries.
enum Harness {
    static let token = "test-token"

    static func simulatorConfiguration(
        uploads: Int = 400, inUse: Double = 0, rateLimit: RateLimit = RateLimit(requests: 1000, window: .seconds(3)),
        faults: SimulatorFaults = .init(), refused: Set<String> = [], seed: UInt64 = 7
    ) -> SimulatorConfiguration {
        SimulatorConfiguration(
            apiToken: token, environments: [nil, "staging"], uploadsPerEnvironment: uploads, inUseFraction: inUse,
            seed: seed, rateLimit: rateLimit, jobBaseDuration: .milliseconds(30),
            jobPerUploadDuration: .microseconds(250), jobJitter: 0.1, refusedUploadIDs: refused, faults: faults)
    }

    static func clientConfiguration(
        baseURL: String, token: String = Harness.token,
        rateLimit: RateLimit = RateLimit(requests: 1000, window: .seconds(3)),
        requestTimeout: Duration = .seconds(5)
    ) -> CMAClientConfiguration {
        CMAClientConfiguration(
            apiToken: APIToken(token), baseURL: baseURL, rateLimit: rateLimit, jobTimeout: .seconds(20),
            requestTimeout: requestTimeout, retryDeadline: .seconds(20),
            retryBaseDelay: .milliseconds(10), retryMaxDelay: .milliseconds(200),
            pollSchedule: .init(priorBase: .milliseconds(50), priorPerUpload: .microseconds(250)))
    }

    static var logger: Logger {
        var logger = Logger(label: "DatoCMSTests")
        logger.logLevel = .critical
        return logger
    }

    /// Runs `body` against a started simulator and shuts it down afterwards, whatever happens.
    static func withSimulator<T>(
        _ configuration: SimulatorConfiguration, _ body: (CMASimulator, String) async throws -> T
    ) async throws -> T {
        let simulator = CMASimulator(configuration: configuration, logger: logger)
        let url = try await simulator.start()
        do {
            let result = try await body(simulator, url)
            await simulator.shutdown()
            return result
        } catch {
            await simulator.shutdown()
            throw error
        }
    }
}
