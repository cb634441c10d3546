import DatoCMS
import Foundation
import Kafka
import Logging
import Purger

/// The "naive" baseline: one bulk operation per request, as a script built on the official client would do it.
///
/// It consumes the same topic and publishes the same completion events as the worker, but submits each request's
/// ids as they come, up to `concurrency` requests at once, with no batching across requests and no offset
/// bookkeeping. It lives in the benchmark rather than behind a worker flag: the worker's consume loop takes up to 200
/// messages per poll, so even a 1 ms batch wait merges requests under a backlog.
struct BenchNaivePipeline: Sendable {
    var bootstrapServers: String
    var requestsTopic: String
    var resultsTopic: String
    var client: CMAClient
    var concurrency: Int
    /// Valid requests to process before returning.
    var expected: Int
    var logger: Logger

    func run() async throws {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: "bench-naive"),
            logger: logger)
        try consumer.subscribe(topics: [requestsTopic])
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var started = 0
            var running = 0
            while started < expected, !Task.isCancelled {
                for message in try await consumer.poll(maxMessages: 100, timeout: .milliseconds(100)) {
                    let source = SourcePosition(
                        topic: message.topicPartition.topic, partition: message.topicPartition.partition,
                        offset: message.offset)
                    guard case .success(let request) = DeletionRequest.decode(value: message.value, source: source)
                    else { continue }
                    if running >= concurrency {
                        try await group.next()
                        running -= 1
                    }
                    started += 1
                    running += 1
                    group.addTask { try await process(request, producer: producer) }
                }
            }
            try await group.waitForAll()
        }
        await consumer.close(timeout: .seconds(2))
        await producer.close(timeout: .seconds(5))
    }

    private func process(_ request: DeletionRequest, producer: KafkaProducer) async throws {
        let operation = BulkOperation(
            batchID: BatchID(), environment: request.environment, uploadIDs: request.uploadIDs,
            requests: [request.ref], firstEnqueuedAt: .now, firstEnqueuedWallTime: Date())
        let outcome = try await client.destroyUploads(request.uploadIDs, environment: request.environment)
        let event = try CompletionEvent(operation: operation, requests: [request.ref], outcome: outcome)
        _ = try await producer.send(
            KafkaRecord(topic: resultsTopic, key: Array(operation.batchID.description.utf8), value: event.jsonBytes()))
    }
}
