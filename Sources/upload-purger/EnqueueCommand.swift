import ArgumentParser
import DatoCMS
import Foundation
import Kafka
import Logging

/// `upload-purger enqueue`: produces deletion requests from arguments, a file or standard input.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Produce deletion requests for upload ids given as arguments, in a file, or on standard input.",
        discussion: """
            Ids are separated by whitespace or commas. Every id is checked before anything is produced. Ids are \
            split into requests of at most 1,000 (the contract's limit); with --request-id, the requests are \
            named <id>-1, <id>-2, ... when there is more than one. Each request is keyed by its request id.
            """
    )

    @Argument(help: "Upload ids. With none and no --file, ids are read from standard input.")
    var ids: [String] = []

    @Option(help: "Read ids from this file ('-' for standard input).")
    var file: String?

    @Option(help: "DatoCMS environment of the requests (default: the worker's default environment).")
    var environment: String?

    @Option(help: "Request id (default: the worker names requests by topic/partition/offset).")
    var requestID: String?

    @Option(help: "Broker list (default: KAFKA_BOOTSTRAP_SERVERS).")
    var bootstrapServers: String?

    @Option(help: "Topic (default: PURGER_REQUESTS_TOPIC, else upload-deletion-requests).")
    var topic: String?

    func run() async throws {
        let environmentVariables = ProcessInfo.processInfo.environment
        guard
            let servers = bootstrapServers ?? environmentVariables["KAFKA_BOOTSTRAP_SERVERS"],
            !servers.isEmpty
        else {
            FileHandle.standardError.write(
                Data("upload-purger: KAFKA_BOOTSTRAP_SERVERS: is required for enqueue (or --bootstrap-servers)\n".utf8))
            throw ExitCode(2)
        }
        let topic = self.topic ?? environmentVariables["PURGER_REQUESTS_TOPIC"] ?? "upload-deletion-requests"
        let uploadIDs: [UploadID]
        do {
            uploadIDs = try Self.parse(readInput())
        } catch let error as EnqueueError {
            FileHandle.standardError.write(Data("upload-purger: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
        let requests = Self.requests(for: uploadIDs, requestID: requestID, environment: environment)

        var logger = Logger(label: "upload-purger.enqueue")
        logger.logLevel = .error
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        for request in requests {
            _ = try await producer.send(KafkaRecord(topic: topic, key: request.key, value: request.value))
        }
        await producer.close()
        print("Produced \(requests.count) request(s) with \(uploadIDs.count) upload id(s) to \(topic).")
    }

    private func readInput() throws -> String {
        if let file, file != "-" {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw EnqueueError(message: "--file: cannot read \(file)")
            }
            return text
        }
        if !ids.isEmpty, file == nil { return ids.joined(separator: " ") }
        return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Splits `text` on whitespace and commas and validates every id; the first bad one is an error.
    static func parse(_ text: String) throws -> [UploadID] {
        let tokens = text.split { $0.isWhitespace || $0 == "," }.map(String.init)
        guard !tokens.isEmpty else { throw EnqueueError(message: "no upload ids given") }
        var seen: Set<UploadID> = []
        var ids: [UploadID] = []
        for token in tokens {
            guard let id = UploadID(validating: token) else {
                throw EnqueueError(message: "\"\(token)\" is not a DatoCMS upload id")
            }
            if seen.insert(id).inserted { ids.append(id) }
        }
        return ids
    }

    /// Requests of at most 1,000 ids each, as JSON values keyed by request id.
    static func requests(
        for ids: [UploadID], requestID: String?, environment: String?
    ) -> [(key: [UInt8]?, value: [UInt8])] {
        let chunks = stride(from: 0, to: ids.count, by: 1_000).map { Array(ids[$0..<min($0 + 1_000, ids.count)]) }
        return chunks.enumerated().map { index, chunk in
            var object: [String: Any] = [
                "upload_ids": chunk.map(\.rawValue), "requested_at": Date().formatted(.iso8601),
            ]
            let name = requestID.map { chunks.count > 1 ? "\($0)-\(index + 1)" : $0 }
            if let name { object["request_id"] = name }
            if let environment { object["environment"] = environment }
            let value = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return (name.map { Array($0.utf8) }, Array(value))
        }
    }
}

struct EnqueueError: Error {
    var message: String
}
