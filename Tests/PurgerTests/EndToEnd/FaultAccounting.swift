import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger

/// What the fault suite produced at one position of the requests topic, as the worker's decoder classifies it.
struct ProducedMessage: Sendable {
    enum Kind: Sendable {
        /// One of the generated valid requests.
        case valid
        /// A fuzzed value that still decodes as a request (a harmless mutation).
        case fuzzedValid
        /// A fuzzed value the contract rejects, with the dead-letter code it must get.
        case fuzzedInvalid(code: String)
    }

    var kind: Kind
    /// The request id the worker must report (`<topic>/<partition>/<offset>` when the value names none).
    var requestID: String?
    /// The ids it asks to delete, and where.
    var uploadIDs: Set<String>
    var environment: String?

    /// Classifies `value`, produced at `position`, with the worker's own decoder.
    init(value: [UInt8]?, position: SourcePosition, fuzzed: Bool) {
        switch DeletionRequest.decode(value: value, source: position) {
        case .success(let request):
            kind = fuzzed ? .fuzzedValid : .valid
            requestID = request.requestID
            uploadIDs = Set(request.uploadIDs.map(\.rawValue))
            environment = request.environment
        case .failure(let invalid):
            kind = .fuzzedInvalid(code: invalid.code.rawValue)
            requestID = nil
            uploadIDs = []
            environment = nil
        }
    }
}

/// Everything the workers published, read back as it arrives: completion events and dead letters, indexed by the
/// requests-topic position they account for.
struct PublishedLedger {
    let resultsTopic: String
    let dlqTopic: String
    var events: [ReadEvent] = []
    var undecodableEvents = 0
    /// Positions named in the `requests` of some event, with the indexes of those events.
    var reported: [SourcePosition: [Int]] = [:]
    /// Positions on the dead-letter topic, with the codes of their dead letters (one per publication).
    var deadLettered: [SourcePosition: [String]] = [:]
    var deadLettersWithoutSource = 0

    init(resultsTopic: String, dlqTopic: String) {
        self.resultsTopic = resultsTopic
        self.dlqTopic = dlqTopic
    }

    /// Completion events and dead letters read so far (repeats included): whether a worker is busy.
    var published: Int { events.count + undecodableEvents + deadLettered.values.reduce(0) { $0 + $1.count } }

    /// Positions accounted for: in an event or on the dead-letter topic (job timeouts excepted: their event counts).
    var accountedCount: Int { reported.count + deadLettered.keys.filter { reported[$0] == nil }.count }

    mutating func absorb(_ messages: [KafkaMessage]) {
        for message in messages {
            if message.topicPartition.topic == resultsTopic {
                guard let event = try? ReadEvent(message) else {
                    undecodableEvents += 1
                    continue
                }
                let index = events.count
                events.append(event)
                for request in event.requests {
                    let position = SourcePosition(
                        topic: request.topic, partition: request.partition, offset: request.offset)
                    if reported[position]?.last != index { reported[position, default: []].append(index) }
                }
            } else if message.topicPartition.topic == dlqTopic {
                func header(_ name: String) -> String? {
                    message.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
                }
                guard let topic = header("purger.source.topic"),
                    let partition = header("purger.source.partition").flatMap({ Int32($0) }),
                    let offset = header("purger.source.offset").flatMap({ Int64($0) })
                else {
                    deadLettersWithoutSource += 1
                    continue
                }
                deadLettered[SourcePosition(topic: topic, partition: partition, offset: offset), default: []].append(
                    header("purger.error.code") ?? "")
            }
        }
    }
}

/// The fault suite's final reckoning of every produced message against what was published and what the simulator
/// did.
struct FaultAccounting {
    var produced = 0
    var valid = 0
    var fuzzedInvalid = 0
    var fuzzedValid = 0
    /// Valid (or validly mutated) requests named in at least one completion event.
    var inEvents = 0
    /// Invalid messages on the dead-letter topic with the code the decoder gives them.
    var deadLettered = 0
    /// Produced messages in neither: must be 0.
    var lost = 0
    /// Valid requests some of whose ids are in no event naming the request: must be 0.
    var requestsMissingIDs = 0
    /// Valid requests that went to the dead-letter topic other than for a job timeout, invalid ones in an event,
    /// or dead letters with another code than the decoder's: must be 0.
    var misrouted = 0
    var misroutedExamples: [String] = []
    /// Requests with an id reported in more than one event, and dead letters published more than once (both
    /// allowed after `kill -9`: the work since the last commit is done again).
    var duplicateRequests = 0
    var duplicateDeadLetters = 0
    var events = 0
    var inconsistentEvents = 0
    var eventsByStatus: [String: Int] = [:]
    /// Why events were not `completed`, with how many said so.
    var notCompletedErrors: [String: Int] = [:]
    var successfulInEvents = 0
    var notFoundInEvents = 0
    var failedInEvents = 0
    /// Events with `failed > 0`, and how many of them name the failed ids.
    var eventsWithFailures = 0
    var eventsNamingFailures = 0
    /// Events whose counts are marked inferred.
    var inferredEvents = 0
    var simulatorDeletions = 0
    var doubleDeletions = 0
    /// Ids the simulator deleted that no completion event names: must be 0.
    var deletedUnreported = 0
    /// Ids the simulator deleted that no decodable request asked for: must be 0.
    var deletedUnrequested = 0
    /// Ids of an event that names its failures, not named failed, that still exist: must be 0.
    var reportedDeletedButExisting = 0
    /// Deleted ids an event that names its failures reports as gone.
    var deletedConfirmed = 0
    /// Ids named failed (still present) that are gone: must be 0 (in particular, a replay never names failed what the
    /// first processing deleted).
    var namedFailedButGone = 0
    /// Events with exact counts whose `successful` differs from what the simulator's jobs of the event deleted:
    /// must be 0.
    var exactCountMismatches = 0
    /// `successful` summed over exact events, and what their jobs deleted by the simulator's count.
    var exactSuccessful = 0
    var exactJobDeletions = 0
    /// Events with inferred counts whose jobs (their own and lost ones sent for them) deleted fewer than
    /// `successful` or more than `successful + not_found` (+ `failed` when the failed ids are not named): must be 0.
    var inferredOutOfBounds = 0

    /// The share of events with failures that name the failed ids.
    var namingShare: Double {
        eventsWithFailures == 0 ? 1 : Double(eventsNamingFailures) / Double(eventsWithFailures)
    }

    init(
        produced messages: [SourcePosition: ProducedMessage], ledger: PublishedLedger,
        deleted: [String?: Set<String>], existing: [String?: Set<String>], doubleDeletions: Int,
        jobs: [SimulatorStats.Job] = []
    ) {
        produced = messages.count
        self.doubleDeletions = doubleDeletions
        simulatorDeletions = deleted.values.reduce(0) { $0 + $1.count }
        var requested: [String?: Set<String>] = [:]
        for (position, message) in messages {
            let events = ledger.reported[position] ?? []
            let codes = ledger.deadLettered[position] ?? []
            if codes.count > 1 { duplicateDeadLetters += 1 }
            switch message.kind {
            case .valid, .fuzzedValid:
                if case .valid = message.kind { valid += 1 } else { fuzzedValid += 1 }
                requested[message.environment, default: []].formUnion(message.uploadIDs)
                guard !events.isEmpty else {
                    lost += 1
                    if !codes.isEmpty { misroute("\(position) (valid) dead-lettered as \(codes)") }
                    continue
                }
                inEvents += 1
                var seen: [String: Int] = [:]
                for index in events {
                    let event = ledger.events[index]
                    if event.requests.contains(where: {
                        $0.partition == position.partition && $0.offset == position.offset
                            && $0.request_id != message.requestID
                    }) {
                        misroute("\(position) reported with another request id than \(message.requestID ?? "-")")
                    }
                    for id in event.upload_ids where message.uploadIDs.contains(id) { seen[id, default: 0] += 1 }
                }
                if seen.count < message.uploadIDs.count { requestsMissingIDs += 1 }
                if seen.values.contains(where: { $0 > 1 }) { duplicateRequests += 1 }
                if codes.contains(where: { $0 != "job_timeout" }) {
                    misroute("\(position) (valid) also dead-lettered as \(codes)")
                }
            case .fuzzedInvalid(let code):
                fuzzedInvalid += 1
                if !events.isEmpty { misroute("\(position) (invalid, \(code)) in a completion event") }
                if codes.isEmpty {
                    if events.isEmpty { lost += 1 }
                    continue
                }
                deadLettered += 1
                if codes.contains(where: { $0 != code }) {
                    misroute("\(position) dead-lettered as \(codes), not \(code)")
                }
            }
        }

        events = ledger.events.count
        let jobDeletions = Dictionary(jobs.map { ($0.id, $0.deleted) }, uniquingKeysWith: +)
        let lostJobs = jobs.filter(\.responseLost)
        var reportedIDs: [String?: Set<String>] = [:]
        var reportedGone: [String?: Set<String>] = [:]
        var reportedFailed: [String?: Set<String>] = [:]
        for event in ledger.events {
            eventsByStatus[event.status, default: 0] += 1
            if event.status != "completed" {
                notCompletedErrors["\(event.status): \((event.error ?? "-").prefix(100))", default: 0] += 1
            }
            successfulInEvents += event.successful
            notFoundInEvents += event.not_found
            failedInEvents += event.failed
            if event.successful + event.not_found + event.failed != event.requested
                || Set(event.upload_ids).count != event.requested
                || (event.counts == "exact" && event.failed_upload_ids == nil)
            {
                inconsistentEvents += 1
            }
            reportedIDs[event.environment, default: []].formUnion(event.upload_ids)
            if event.failed > 0 {
                eventsWithFailures += 1
                if event.failed_upload_ids != nil { eventsNamingFailures += 1 }
            }
            if let failed = event.failed_upload_ids {
                if failed.count != event.failed || !Set(failed).isSubset(of: event.upload_ids) {
                    inconsistentEvents += 1
                }
                reportedGone[event.environment, default: []].formUnion(Set(event.upload_ids).subtracting(failed))
                reportedFailed[event.environment, default: []].formUnion(failed)
            }
            let byOwnJobs = event.job_ids.reduce(0) { $0 + (jobDeletions[$1] ?? 0) }
            if event.counts == "exact" {
                exactSuccessful += event.successful
                exactJobDeletions += byOwnJobs
                if byOwnJobs != event.successful { exactCountMismatches += 1 }
            } else {
                inferredEvents += 1
                // Jobs whose answer was lost were sent for this event if they started while it was being worked on
                // and carried only its ids.
                let ids = Set(event.upload_ids)
                let submitted = event.submitted_at.flatMap(Self.date(from:)) ?? .distantFuture
                let completed = event.completed_at.flatMap(Self.date(from:)) ?? .distantPast
                let byLostJobs = lostJobs.filter { job in
                    let started = Date(timeIntervalSince1970: job.startedAt)
                    return started >= submitted.addingTimeInterval(-0.001) && started <= completed
                        && Set(job.lostUploadIDs ?? []).isSubset(of: ids)
                }.reduce(0) { $0 + $1.deleted }
                let truth = byOwnJobs + byLostJobs
                let upper = event.successful + event.not_found + (event.failed_upload_ids == nil ? event.failed : 0)
                if truth < event.successful || truth > upper { inferredOutOfBounds += 1 }
            }
        }
        for (environment, ids) in deleted {
            deletedUnreported += ids.subtracting(reportedIDs[environment] ?? []).count
            deletedUnrequested += ids.subtracting(requested[environment] ?? []).count
            deletedConfirmed += ids.intersection(reportedGone[environment] ?? []).count
            namedFailedButGone += ids.intersection(reportedFailed[environment] ?? []).count
        }
        for (environment, ids) in reportedGone {
            reportedDeletedButExisting += ids.intersection(existing[environment] ?? []).count
        }
    }

    private static func date(from text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    private mutating func misroute(_ example: String) {
        misrouted += 1
        if misroutedExamples.count < 5 { misroutedExamples.append(example) }
    }

    /// One line with every figure, for the run log.
    var summary: String {
        var statuses = eventsByStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        for (error, count) in notCompletedErrors.sorted(by: { $0.value > $1.value }).prefix(3) {
            statuses += ", \(count) × \(error)"
        }
        return """
            produced \(produced) (valid \(valid), fuzzed invalid \(fuzzedInvalid), fuzzed still valid \(fuzzedValid)); \
            accounted \(inEvents + deadLettered) (in events \(inEvents), dead-lettered \(deadLettered)); \
            lost \(lost); requests missing ids \(requestsMissingIDs); misrouted \(misrouted); \
            duplicates \(duplicateRequests) requests, \(duplicateDeadLetters) dead letters; \
            events \(events) (\(statuses); inconsistent \(inconsistentEvents)); \
            outcomes in events: successful \(successfulInEvents), not found \(notFoundInEvents), failed \
            \(failedInEvents); events with failures \(eventsWithFailures), naming them \(eventsNamingFailures) \
            (\(String(format: "%.1f", namingShare * 100)) %); inferred events \(inferredEvents), out of bounds \
            \(inferredOutOfBounds); exact events' successful \(exactSuccessful) vs their jobs' deletions \
            \(exactJobDeletions) (events differing \(exactCountMismatches)); simulator deletions \
            \(simulatorDeletions) (double \(doubleDeletions)); deleted ids reported gone \(deletedConfirmed), in no \
            event \(deletedUnreported), asked for by no request \(deletedUnrequested); ids reported gone but existing \
            \(reportedDeletedButExisting); ids named failed but gone \(namedFailedButGone)
            """
    }
}
