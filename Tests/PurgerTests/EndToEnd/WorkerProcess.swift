import AsyncHTTPClient
import Foundation
import Synchronization

/// The real `upload-purger` binary as a child process, with its output collected.
final class WorkerProcess: Sendable {
    private let process: Process
    private let output = CollectedOutput()

    /// The binary next to the test bundle (`swift build --build-tests` builds it with the tests).
    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/upload-purger")
    }

    init(arguments: [String], environment: [String: String]) throws {
        process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { current, _ in current }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let output = self.output
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            // At end of file the handler would be called again and again with nothing, spinning a thread.
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            output.state.withLock { $0.stdout.append(data) }
        }
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            // At end of file the handler would be called again and again with nothing, spinning a thread.
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            output.state.withLock { $0.stderr.append(data) }
        }
        try process.run()
    }

    var stdout: String { output.state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    var stderr: String { output.state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to end, up to `timeout`; returns its exit status, or nil if still running.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        guard !process.isRunning else { return nil }
        // Let the pipes drain what the process wrote last.
        try? await Task.sleep(for: .milliseconds(200))
        return process.terminationStatus
    }

    /// Runs the binary to completion and returns its exit status and output.
    static func run(
        _ arguments: [String], environment: [String: String], timeout: Duration = .seconds(30)
    ) async throws -> (status: Int32?, stdout: String, stderr: String) {
        let process = try WorkerProcess(arguments: arguments, environment: environment)
        let status = await process.waitForExit(timeout: timeout)
        if status == nil { process.signal(SIGKILL) }
        return (status, process.stdout, process.stderr)
    }
}

/// What a child process wrote, appended from the pipes' handlers.
final class CollectedOutput: Sendable {
    let state = Mutex<(stdout: Data, stderr: Data)>((Data(), Data()))
}

/// A GET on loopback, returning status and body, or nil when nothing answers.
func httpGet(_ url: String) async -> (status: Int, body: String)? {
    do {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 10 << 20)
        return (Int(response.status.code), String(decoding: body.readableBytesView, as: UTF8.self))
    } catch {
        return nil
    }
}
