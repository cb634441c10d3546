import DatoCMSSimulator
import Foundation
import Kafka
import Logging
import Purger
import Synchronization

/// The `consume` scenario: how fast the worker's consume path (read, decode, batch, offset bookkeeping; no API
/// calls) gets through a topic, against a plain consumer that reads the same topic and does nothing with it.
///
/// Both read with the project's `KafkaConsumer` in the worker's shape (polls of up to 200 messages, 100 ms
/// timeout), each run in a new consumer group from the earliest offset, alternating which goes first. The rate is
/// counted from the first message to the last, so joining the group is not part of it.
struct BenchConsume {
    var requests: Int
    var maxIDsPerRequest: Int
    var partitions: Int32
    var runs: Int
    var logger: Logger

    private static let topic = "upload-deletion-requests"

    /// One reading of the whole topic.
    struct Reading: Sendable, Codable {
        var messagesPerSecond: Double
        /// Whole-process CPU seconds per 100,000 messages (the mock broker serving the fetches included).
        var cpuPer100k: Double
    }

    /// One pair of readings, side by side.
    struct Run: Sendable, Codable {
        var plain: Reading
        var pipeline: Reading
        var ratio: Double { pipeline.messagesPerSecond / max(plain.messagesPerSecond, 0.001) }
    }

    /// What the scenario measured.
    struct Result: Sendable, Codable {
        var requests: Int
        var uploads: Int
        var partitions: Int32
        var meanValueBytes: Double
        var runs: [Run]
        /// Batches the pipeline formed per reading, and the ids they carried (every id of the topic).
        var batchesPerReading: Int
        var idsPerReading: Int
        var complete: Bool

        var medianPlain: Double { BenchConsume.median(runs.map(\.plain.messagesPerSecond)) }
        var medianPipeline: Double { BenchConsume.median(runs.map(\.pipeline.messagesPerSecond)) }
        var medianRatio: Double { BenchConsume.median(runs.map(\.ratio)) }
    }

    func run() async throws -> Result {
        let cluster = try MockCluster(brokers: 1, logger: logger)
        try cluster.createTopic(Self.topic, partitions: partitions)
        let stamp = ISO8601DateFormatter().string(from: Date())
        let maxIDs = maxIDsPerRequest
        let sizes = (0..<requests).map { Self.size(of: $0, maxIDs: maxIDs) }
        let totalBytes = Atomic<Int>(0)
        BenchReport.progress("bench: producing \(requests) requests to \(partitions) partitions…")
        try await BenchTopic.produce(
            count: requests, topic: Self.topic, partitions: partitions, bootstrapServers: cluster.bootstrapServers,
            logger: logger
        ) { index in
            let value = Self.value(index: index, size: sizes[index], requestedAt: stamp)
            totalBytes.add(value.count, ordering: .relaxed)
            return value
        }
        let uploads = sizes.reduce(0, +)
        var runs: [Run] = []
        var complete = true
        var batches = 0
        var ids = 0
        while runs.count < self.runs {
            let pipelineFirst = runs.count % 2 == 1
            var plain: Reading?
            var pipeline: Reading?
            for usePipeline in pipelineFirst ? [true, false] : [false, true] {
                let (reading, counts) = try await read(cluster: cluster, pipeline: usePipeline)
                if usePipeline {
                    pipeline = reading
                    batches = counts.batches
                    ids = counts.ids
                    complete = complete && counts.messages == requests && counts.ids == uploads
                } else {
                    plain = reading
                    complete = complete && counts.messages == requests
                }
            }
            let run = Run(plain: plain!, pipeline: pipeline!)
            BenchReport.progress(
                "bench:   run \(runs.count + 1): plain \(BenchReport.format(run.plain.messagesPerSecond, 0)) msg/s, "
                    + "worker path \(BenchReport.format(run.pipeline.messagesPerSecond, 0)) msg/s, "
                    + "ratio \(BenchReport.format(run.ratio, 3))")
            runs.append(run)
        }
        return Result(
            requests: requests, uploads: uploads, partitions: partitions,
            meanValueBytes: Double(totalBytes.load(ordering: .relaxed)) / Double(max(requests, 1)), runs: runs,
            batchesPerReading: batches, idsPerReading: ids, complete: complete)
    }

    private struct Counts {
        var messages = 0
        var batches = 0
        var ids = 0
    }

    /// Reads the whole topic in a new group; with `pipeline`, every message goes through the worker's bookkeeping
    /// as `PurgeWorker` drives it, each flushed batch finishing at once (no API call).
    private func read(cluster: MockCluster, pipeline: Bool) async throws -> (Reading, Counts) {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: cluster.bootstrapServers, groupID: "bench-consume-\(UUID().uuidString)"),
            logger: logger)
        try consumer.subscribe(topics: [Self.topic])
        let state = Mutex(PipelineState(batcher: Batcher(maxSize: 200, maxWait: .milliseconds(2000))))
        var counts = Counts()
        func finish(_ operations: [BulkOperation]) {
            for operation in operations {
                counts.batches += 1
                counts.ids += operation.uploadIDs.count
                state.withLock { state in
                    _ = state.finish(operation.batchID)
                    state.offsetsStored(state.batchAcknowledged(operation.batchID))
                }
            }
        }
        var first: (at: ContinuousClock.Instant, count: Int, cpu: Double)?
        let deadline = ContinuousClock.now.advanced(by: .seconds(300))
        while counts.messages < requests, ContinuousClock.now < deadline {
            let messages = try await consumer.poll(maxMessages: 200, timeout: .milliseconds(100))
            let afterPoll = ContinuousClock.now
            if first == nil, !messages.isEmpty {
                first = (afterPoll, messages.count, BenchResourceUsage.cpuSeconds())
            }
            counts.messages += messages.count
            guard pipeline else { continue }
            let wallNow = Date()
            for message in messages {
                switch state.withLock({ $0.accept(message, now: afterPoll, wallNow: wallNow) }) {
                case .batched(let operations): finish(operations)
                case .deadLetter, .duplicate: break
                }
            }
            finish(state.withLock { $0.flushDue(now: afterPoll) })
        }
        if pipeline { finish(state.withLock { $0.flushAll() }) }
        let end = ContinuousClock.now
        let cpu = BenchResourceUsage.cpuSeconds()
        await consumer.close(timeout: .seconds(2))
        guard let first, counts.messages > first.count else {
            return (Reading(messagesPerSecond: 0, cpuPer100k: 0), counts)
        }
        let measured = Double(counts.messages - first.count)
        return (
            Reading(
                messagesPerSecond: measured / max((end - first.at).secondsValue, 0.001),
                cpuPer100k: (cpu - first.cpu) / measured * 100_000),
            counts
        )
    }

    // MARK: - Workload

    /// Ids in request `index`: 1 to `maxIDs`, uniformly, from a seed per request.
    static func size(of index: Int, maxIDs: Int) -> Int {
        var random = SplitMix64(seed: 2026 &+ UInt64(index) &* 0x9E37_79B9)
        return Int(random.next() % UInt64(maxIDs)) + 1
    }

    /// A deletion request as upstream writes it (CONTRACT §2): a request id, `size` distinct upload ids (nine in
    /// ten in the 22-character form from the seed, one in ten legacy decimal ids
    /// made from `index`, so that no id repeats) and a `requested_at` time.
    static func value(index: Int, size: Int, requestedAt: String) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var random = SplitMix64(seed: 7 &+ UInt64(index) &* 0xBF58_476D)
        var json = Array(#"{"request_id":"bench-\#(index)","upload_ids":["#.utf8)
        for position in 0..<size {
            if position > 0 { json.append(UInt8(ascii: ",")) }
            json.append(UInt8(ascii: "\""))
            if random.next() % 10 == 9 {
                json.append(contentsOf: String(index * 1_000 + position + 1).utf8)
            } else {
                var bits = random.next()
                for character in 0..<22 {
                    if character == 10 { bits = random.next() }
                    json.append(alphabet[Int(bits & 63)])
                    bits >>= 6
                }
            }
            json.append(UInt8(ascii: "\""))
        }
        json.append(contentsOf: #"],"requested_at":"\#(requestedAt)"}"#.utf8)
        return json
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
