import ArgumentParser
import Foundation

/// The `upload-purger` command line: the worker and its companions.
@main
struct UploadPurger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload-purger",
        abstract: "Consumes upload deletion requests from Kafka and deletes them in bulk through the DatoCMS API.",
        subcommands: [
            RunCommand.self, DemoCommand.self, SimulatorCommand.self, EnqueueCommand.self, BenchCommand.self,
        ]
    )

    /// Runs the command; usage errors exit with 2, as the contract's exit codes say (ArgumentParser's own
    /// default for them is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            guard code == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            exit(withError: ExitCode(2))
        }
    }
}
