import DatoCMS
import Foundation
import Kafka
import Testing

/// `enqueue` as users run it, and the worker's real output against the published JSON Schemas.
@Suite("enqueue and schemas", .serialized, .timeLimit(.minutes(5)))
struct RealOutputTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Validates every value against `schemas/<schema>.schema.json` with check-jsonschema (`ops/setup` installs it
    /// in `.ops-tools/`; otherwise it is looked up on PATH); returns its exit status and output.
    static func checkSchema(_ schema: String, _ values: [[UInt8]]) throws -> (status: Int32, output: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("purger-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try values.enumerated().map { index, value in
            let file = directory.appendingPathComponent("\(index).json")
            try Data(value).write(to: file)
            return file.path
        }
        let installed = repository.appendingPathComponent(".ops-tools/bin/check-jsonschema").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [FileManager.default.isExecutableFile(atPath: installed) ? installed : "check-jsonschema"]
            + ["--schemafile", repository.appendingPathComponent("schemas/\(schema).schema.json").path] + files
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// What the completion-event schema cannot say (CONTRACT section 3); empty when `event` keeps to it.
    static func contractProblems(_ event: ReadEvent) -> [String] {
        var problems: [String] = []
        if event.requested != Set(event.upload_ids).count {
            problems.append("requested \(event.requested) is not the number of distinct upload_ids")
        }
        if event.successful + event.not_found + event.failed != event.requested {
            problems.append("successful + not_found + failed != requested")
        }
        if event.counts == "exact", event.failed_upload_ids == nil {
            problems.append("exact counts without failed_upload_ids")
        }
        if let failed = event.failed_upload_ids {
            if failed.count != event.failed { problems.append("failed_upload_ids does not have `failed` ids") }
            if !Set(failed).isSubset(of: event.upload_ids) { problems.append("failed_upload_ids not submitted") }
        }
        // Same format (milliseconds, Z), so text order is time order.
        let times = [event.first_enqueued_at, event.submitted_at, event.completed_at].compactMap { $0 }
        if times != times.sorted() { problems.append("timestamps out of order: \(times)") }
        return problems.map { "batch \(event.batch_id): \($0)" }
    }

    static func jsonLines(_ values: [[UInt8]]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("purger-\(UUID()).jsonl").path
        let text = values.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func enqueueSplitsIdsIntoValidRequestsAndTheWorkerOutputMatchesTheSchemas() async throws {
        let fixture = try await PipelineFixture()
        let staging = fixture.simulator.uploadIDs(environment: "staging")
        let environment = ["KAFKA_BOOTSTRAP_SERVERS": fixture.cluster.bootstrapServers]
        let file = try Self.jsonLines([Array(staging.prefix(2_500).map(\.rawValue).joined(separator: "\n").utf8)])

        let enqueued = try await WorkerProcess.run(
            [
                "enqueue", "--topic", fixture.requestsTopic, "--environment", "staging", "--request-id", "bulk",
                "--file",
                file,
            ], environment: environment)
        #expect(enqueued.status == 0, "\(enqueued.stderr)")
        #expect(enqueued.stdout.contains("Produced 3 request(s) with 2500 upload id(s)"))
        let single = try await WorkerProcess.run(
            ["enqueue", "--topic", fixture.requestsTopic, "--environment", "staging", staging[2_600].rawValue],
            environment: environment)
        #expect(single.status == 0)
        let refused = try await WorkerProcess.run(
            ["enqueue", "--topic", fixture.requestsTopic, staging[0].rawValue, "not-an-id"], environment: environment)
        #expect(refused.status == 2)
        #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stderr.contains("not-an-id"))

        let requests = try await fixture.read(fixture.requestsTopic, timeout: .seconds(30)) { $0.count >= 4 }
        #expect(requests.count == 4, "nothing produced for the refused invocation")
        let names = requests.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }
        #expect(Set(names) == ["bulk-1", "bulk-2", "bulk-3"])
        let validation = try Self.checkSchema("deletion-request", requests.compactMap(\.value))
        #expect(validation.status == 0, "\(validation.output.suffix(2_000))")

        let worker = fixture.worker(try fixture.settings(group: "schemas-\(UUID())"))
        let (events, failure) = try await withRunningWorker(worker) {
            try await fixture.read(fixture.resultsTopic) { messages in
                messages.reduce(0) { $0 + ((try? ReadEvent($1))?.requested ?? 0) } >= 2_501
            }
        }
        #expect(failure == nil)
        let decoded = try events.map(ReadEvent.init)
        #expect(decoded.reduce(0) { $0 + $1.requested } == 2_501)
        #expect(decoded.allSatisfy { $0.environment == "staging" })
        let eventCheck = try Self.checkSchema("completion-event", events.compactMap(\.value))
        #expect(eventCheck.status == 0, "\(eventCheck.output.suffix(2_000))")
        #expect(decoded.flatMap(Self.contractProblems).isEmpty, "\(decoded.flatMap(Self.contractProblems).prefix(10))")
        await fixture.simulator.shutdown()
    }
}
