import DatoCMSSimulator
import Foundation
import Synchronization

/// One `upload-purger run` child process, started from the `upload-purger` binary next to this one (both products
/// of the package build into the same directory, `swift build --show-bin-path`), with its output in a log file and
/// its memory read from `/proc/<pid>/status`.
final class BenchWorkerProcess: Sendable {
    /// Memory of the process at one moment, from `/proc/<pid>/status`.
    struct Memory: Sendable, Codable {
        /// Seconds since the process started.
        var t: Double
        /// Resident set size now (`VmRSS`), bytes.
        var residentBytes: Int
        /// Peak resident set size so far (`VmHWM`), bytes.
        var peakResidentBytes: Int
    }

    private let process: Process
    private let started = ContinuousClock.now
    private let samples = Mutex<[Memory]>([])
    /// Where the child's standard output and error go.
    let logPath: String

    /// Starts `upload-purger run` with `environment` (plus `PATH`), writing its output to `logPath`.
    init(environment: [String: String], logPath: String) throws {
        let executable = try Self.workerBinary()
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
            let log = FileHandle(forWritingAtPath: logPath)
        else {
            throw BenchWorkerProcessError(message: "cannot write \(logPath)")
        }
        self.logPath = logPath
        process = Process()
        process.executableURL = executable
        process.arguments = ["run"]
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { current, _ in current }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The shipped `upload-purger` binary in the directory of this process's executable (for the tests, the test
    /// bundle's, which is the same build directory).
    static func workerBinary() throws -> URL {
        guard let own = Bundle.main.executableURL else {
            throw BenchWorkerProcessError(message: "cannot tell where this binary is")
        }
        let binary = own.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("upload-purger")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw BenchWorkerProcessError(
                message:
                    "no upload-purger binary at \(binary.path): build it too (swift build --product upload-purger, "
                    + "with the same -c as upload-purger-bench)")
        }
        return binary
    }

    var processIdentifier: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Every memory sample taken so far.
    var memory: [Memory] { samples.withLock { $0 } }

    /// The highest `VmHWM` seen, bytes (0 before the first sample).
    var peakResidentBytes: Int { samples.withLock { $0.map(\.peakResidentBytes).max() ?? 0 } }

    /// Reads `/proc/<pid>/status` once and records the sample; false when the process is gone.
    @discardableResult
    func sampleMemory() -> Bool {
        guard process.isRunning,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return false }
        func kilobytes(_ field: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return nil }
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        }
        guard let resident = kilobytes("VmRSS:"), let peak = kilobytes("VmHWM:") else { return false }
        let sample = Memory(
            t: (ContinuousClock.now - started).secondsValue, residentBytes: resident * 1024,
            peakResidentBytes: peak * 1024)
        samples.withLock { $0.append(sample) }
        return true
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Sends SIGTERM, samples memory until the process ends or `timeout` passes, then SIGKILLs it; returns its
    /// exit status (nil when it had to be killed).
    func stop(timeout: Duration) async -> Int32? {
        signal(SIGTERM)
        return await waitForExit(timeout: timeout)
    }

    /// Samples memory until the process ends or `timeout` passes, then SIGKILLs it; returns its exit status (nil
    /// when it had to be killed).
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning, ContinuousClock.now < deadline {
            sampleMemory()
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard !process.isRunning else {
            signal(SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// The environment of a worker on the benchmark's mock cluster and simulator: quiet logs, no HTTP port.
    static func environment(
        bootstrapServers: String, token: String, baseURL: String, rateLimit: String, extra: [String: String]
    ) -> [String: String] {
        [
            "KAFKA_BOOTSTRAP_SERVERS": bootstrapServers, "DATOCMS_API_TOKEN": token, "DATOCMS_BASE_URL": baseURL,
            "DATOCMS_RATE_LIMIT": rateLimit, "PURGER_HTTP_PORT": "0", "PURGER_LOG_LEVEL": "warning",
            "PURGER_LOG_FORMAT": "text", "PURGER_SHUTDOWN_TIMEOUT_S": "20",
            // Pushed job results (the default) come from the simulator's own websocket.
            "DATOCMS_PUSH_URL": CMASimulator.pushURL(baseURL: baseURL),
            // The mock cluster's rebalance rounds last the session timeout less 1 s (44 s at librdkafka's default),
            // where a broker's last as long as its members take to rejoin: its lowest keeps them near that.
            "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        ].merging(extra) { _, given in given }
    }

    /// A fresh directory for the children's logs.
    static func logDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("upload-purger-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// The child process could not be started.
struct BenchWorkerProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
