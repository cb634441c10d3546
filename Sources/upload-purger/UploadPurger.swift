import ArgumentParser
import PurgerCommandLine

/// The `upload-purger` command line: the worker and its companions.
@main
struct UploadPurger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload-purger",
        abstract: "Consumes upload deletion requests from Kafka and deletes them in bulk through the DatoCMS API.",
        subcommands: [RunCommand.self, DemoCommand.self, SimulatorCommand.self, EnqueueCommand.self]
    )

    /// Runs the command; usage errors exit with 2, as the contract's exit codes say.
    static func main() async { await CommandLineMain.run(Self.self) }
}
