public import ArgumentParser
import Foundation

/// The exit-code convention of the project's command lines (`upload-purger`, `upload-purger-bench`).
public enum CommandLineMain {
    /// Parses the command line as `Root`, runs the chosen command and exits; usage errors exit with 2, as the
    /// contract's exit codes say (ArgumentParser's own default for them is 64).
    public static func run<Root: ParsableCommand>(_ root: Root.Type) async -> Never {
        do {
            var command = try Root.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Root.exit()
        } catch {
            let code = Root.exitCode(for: error)
            guard code == .validationFailure else { Root.exit(withError: error) }
            FileHandle.standardError.write(Data((Root.fullMessage(for: error) + "\n").utf8))
            Root.exit(withError: ExitCode(2))
        }
    }
}
