import Logging
import Purger
import ServiceLifecycle
import Synchronization

/// A worker running in its own service group, for tests that start and stop several workers at different times.
///
/// ``shutdown(timeout:)`` is the SIGTERM path (graceful shutdown); ``cancel(timeout:)`` cancels the task running
/// the group without a graceful shutdown, the most abrupt stop an in-process test can cause. Both wait for the
/// worker with a deadline, so a worker that does not stop fails the test instead of hanging it.
final class RunningWorker: Sendable {
    let worker: PurgeWorker
    private let group: ServiceGroup
    private let task: Task<Void, Never>
    private let outcome = Outcome()

    private final class Outcome: Sendable {
        let result = Mutex<Result<Void, any Error>?>(nil)
    }

    init(_ worker: PurgeWorker) {
        self.worker = worker
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: quietLogger))
        self.group = group
        let outcome = self.outcome
        task = Task {
            let result: Result<Void, any Error>
            do {
                try await group.run()
                result = .success(())
            } catch {
                result = .failure(error)
            }
            outcome.result.withLock { $0 = result }
        }
    }

    /// Triggers a graceful shutdown and waits up to `timeout` for the worker to end; `nil` when it did not.
    func shutdown(timeout: Duration = .seconds(60)) async -> Result<Void, any Error>? {
        await group.triggerGracefulShutdown()
        return await ended(within: timeout)
    }

    /// Triggers a graceful shutdown without waiting for it.
    func triggerShutdown() async {
        await group.triggerGracefulShutdown()
    }

    /// Cancels the worker's task (no graceful shutdown) and waits up to `timeout` for it to end; `nil` when it did
    /// not.
    func cancel(timeout: Duration = .seconds(30)) async -> Result<Void, any Error>? {
        task.cancel()
        return await ended(within: timeout)
    }

    /// How the worker ended, waiting up to `timeout`; `nil` while it still runs.
    func ended(within timeout: Duration) async -> Result<Void, any Error>? {
        _ = await eventually(timeout: timeout) { self.outcome.result.withLock { $0 != nil } }
        return outcome.result.withLock { $0 }
    }
}

extension Result where Success == Void {
    /// Whether the worker ended without an error.
    var succeeded: Bool {
        if case .success = self { true } else { false }
    }
}
