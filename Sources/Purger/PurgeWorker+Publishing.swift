import Foundation
import Kafka

// MARK: - Publishing

extension PurgeWorker {
    /// Publishes a completion event and its dead letters; the event returned tells the machine how it went.
    func publish(
        _ publication: PipelineStateMachine.Publication, producer: KafkaProducer
    ) async -> PipelineStateMachine.Event {
        let event = publication.event
        let outcome = publication.outcome
        do {
            try await publish(
                KafkaRecord(
                    topic: configuration.resultsTopic, key: Array(event.batchID.description.utf8),
                    value: event.jsonBytes()),
                producer: producer)
            for (message, deadLetter) in publication.deadLetters {
                try await publishDeadLetter(message, deadLetter, producer: producer)
            }
        } catch {
            return .publishFailed(error)
        }
        metrics.uploadsDeleted.increment(by: outcome.deleted)
        metrics.uploadsNotFound.increment(by: outcome.notFound)
        metrics.uploadsStillPresent.increment(by: outcome.stillPresent)
        metrics.completion(status: outcome.status.rawValue)
        for requestedAt in publication.requestedAt {
            metrics.endToEnd(since: requestedAt, until: outcome.completedAt)
        }
        logger.debug(
            "Bulk operation reported",
            metadata: [
                "batch_id": "\(event.batchID)", "job_id": "\(event.jobID ?? "-")",
                "status": "\(outcome.status.rawValue)", "deleted": "\(outcome.deleted)",
                "not_found": "\(outcome.notFound)", "still_present": "\(outcome.stillPresent)",
            ])
        return .published(publication.batchID)
    }

    /// Sends `message` unchanged to the dead-letter topic with the reason in headers. A value too large for the
    /// dead-letter topic (a request far above 1 MiB) goes without its value and with a `purger.value.omitted`
    /// header giving its size, rather than stopping the worker on a message it could never deliver.
    func publishDeadLetter(
        _ message: KafkaMessage, _ deadLetter: DeadLetter, producer: KafkaProducer
    ) async throws(KafkaError) {
        metrics.deadLetters.increment()
        let headers = deadLetter.headers.map { KafkaHeader(name: $0.key, value: $0.value) }
        do {
            try await publish(
                KafkaRecord(topic: configuration.dlqTopic, key: message.key, value: message.value, headers: headers),
                producer: producer)
        } catch  where error.code == .messageSizeTooLarge {
            logger.warning(
                "Dead letter too large for its topic; sent without its value",
                metadata: ["bytes": "\(message.value?.count ?? 0)", "offset": "\(message.offset)"])
            try await publish(
                KafkaRecord(
                    topic: configuration.dlqTopic, key: message.key, value: nil,
                    headers: headers + [KafkaHeader(name: "purger.value.omitted", text: "\(message.value?.count ?? 0)")]
                ),
                producer: producer)
        }
    }

    /// How long leaving the group and flushing the producer may take after the work is over.
    static let closeTimeout: Duration = .seconds(5)

    /// How often a record whose delivery failed with a retriable error is sent again before the worker gives up.
    static let maximumResends = 3

    /// Sends `record` until the broker acknowledges it, sending it again (after a short pause) when delivery
    /// failed with a retriable error: a transient broker fault must not stop the worker. A resend may publish the
    /// record twice, never lose it (at-least-once). Other errors, and the last retriable one, are thrown.
    func publish(_ record: KafkaRecord, producer: KafkaProducer) async throws(KafkaError) {
        var resends = 0
        while true {
            do {
                _ = try await producer.send(record)
                return
            } catch  where error.isRetriable && !error.isFatal && resends < Self.maximumResends && !Task.isCancelled {
                resends += 1
                logger.warning(
                    "Publishing failed; sending again",
                    metadata: ["topic": "\(record.topic)", "error": "\(error)", "resend": "\(resends)"])
                try? await Task.sleep(for: .milliseconds(200 * resends))
            }
        }
    }
}
