import Foundation
import Kafka
import Synchronization
import Testing

@Suite("Kafka consumer on the mock cluster", .serialized, .timeLimit(.minutes(5)))
struct KafkaConsumerTests {
    @Test func deliversEveryMessageOnceInPartitionOrderWithHeaders() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        try await fixture.produce(10_000, with: producer)
        let consumer = try fixture.consumer(group: "group-\(UUID())")
        let messages = try await consume(consumer) { $0.count >= 10_000 }

        #expect(messages.count == 10_000)
        #expect(Set(messages.map(\.index)) == Set(0..<10_000))
        for partition in fixture.allPartitions {
            let offsets = messages.filter { $0.topicPartition == partition }.map(\.offset)
            #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition) out of order")
        }
        for message in messages {
            #expect(message.key == Array("key-\(message.index)".utf8))
            #expect(
                message.headers == [
                    KafkaHeader(name: "index", text: "\(message.index)"), KafkaHeader(name: "empty", value: nil),
                ])
            #expect(message.timestamp != nil)
        }
        await consumer.close()
        await producer.close()
    }

    /// librdkafka 2.0.2 aborts the process when it destroys a cooperative-sticky consumer that has had its first
    /// JoinGroup answer but no assignment yet (#4312). Every SyncGroup fails here, so the consumer is in that
    /// window for certain when it closes and is released.
    @Test func aConsumerReleasedBeforeItsFirstAssignmentDoesNotAbortTheProcess() async throws {
        let fixture = try KafkaFixture(partitions: 1, brokers: 1)
        fixture.cluster.pushRequestErrors(.syncGroup, errors: Array(repeating: .rebalanceInProgress, count: 100_000))
        defer { fixture.cluster.clearRequestErrors(.syncGroup) }
        let lines = LineRecorder()
        do {
            let consumer = try fixture.consumer(
                group: "group-\(UUID())", properties: ["debug": "cgrp"], logger: lines.logger)
            _ = try await poll(consumer, timeout: .seconds(60)) { lines.contains("JoinGroup response: GenerationId") }
            #expect(lines.contains("JoinGroup response: GenerationId"))
            await consumer.close()
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while !lines.contains("Consumer kept until the process exits"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(lines.contains("Consumer kept until the process exits"))
        #expect(!lines.contains("Partitions assigned"))
    }

    /// How a member commits finished work of a partition it lost to another member: the group takes commits of
    /// any partition from any current member.
    @Test func aMemberCommitsExplicitOffsetsOfAPartitionAssignedToAnother() async throws {
        let fixture = try KafkaFixture(partitions: 2)
        let group = "group-\(UUID())"
        let mine = try fixture.consumer(group: group)
        let other = try fixture.consumer(group: group)
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while try mine.assignment().count != 1 || other.assignment().count != 1, ContinuousClock.now < deadline {
            _ = try await mine.poll(timeout: .milliseconds(50))
            _ = try await other.poll(timeout: .milliseconds(50))
        }
        let theirs = try #require(other.assignment().first)
        #expect(try !mine.assignment().contains(theirs))
        try await mine.commit([theirs: 42])
        #expect(try await other.committedOffsets(for: [theirs])[theirs] == .some(42))
        await mine.close()
        await other.close()
    }

    @Test func newMemberResumesExactlyAfterTheLastStoredOffset() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        try await fixture.produce(1_000, with: producer)
        let group = "group-\(UUID())"

        let first = try fixture.consumer(group: group)
        let all = try await consume(first) { $0.count >= 1_000 }
        #expect(all.count == 1_000)
        var processed: Set<Int> = []
        var stored: [TopicPartition: Int64] = [:]
        for partition in fixture.allPartitions {
            let messages = all.filter { $0.topicPartition == partition }.sorted { $0.offset < $1.offset }
            let firstHalf = messages.prefix(messages.count / 2)
            processed.formUnion(firstHalf.map(\.index))
            if let last = firstHalf.last { stored[partition] = last.offset + 1 }
        }
        try first.storeOffsets(stored)
        try await first.commit()
        await first.close()

        let second = try fixture.consumer(group: group)
        let rest = try await consume(second) { processed.count + $0.count >= 1_000 }
        #expect(rest.count == 1_000 - processed.count)
        #expect(Set(rest.map(\.index)).isDisjoint(with: processed))
        #expect(processed.union(rest.map(\.index)) == Set(0..<1_000))
        for partition in fixture.allPartitions {
            let firstOffset = rest.filter { $0.topicPartition == partition }.map(\.offset).min()
            #expect(firstOffset == (stored[partition] ?? 0) || firstOffset == nil)
        }
        let committed = try await second.committedOffsets(for: fixture.allPartitions)
        for partition in fixture.allPartitions {
            #expect(committed[partition] == .some(stored[partition]))
        }
        await second.close()
        await producer.close()
    }

    @Test func aRevocationWaitsForTheApplicationAndTheNextOwnerReadsFromWhatItCommitted() async throws {
        let fixture = try KafkaFixture(partitions: 4)
        let producer = try fixture.producer()
        let group = "group-\(UUID())"
        let memberA = RevokingMember(
            try fixture.consumer(
                group: group, properties: ["enable.auto.commit": "false"], revocations: .byApplication))
        try await fixture.produce(400, with: producer)
        try await memberA.poll { (try? memberA.consumer.assignment().count) == 4 && memberA.processed.count >= 400 }
        #expect(memberA.processed.count == 400)

        // B joins: A is asked to give partitions up, keeps them until it has committed, then B reads them from
        // A's committed offsets: no message is processed by both.
        let memberB = RevokingMember(
            try fixture.consumer(
                group: group, properties: ["enable.auto.commit": "false"], revocations: .byApplication))
        let split: @Sendable () -> Bool = {
            let assignedA = (try? memberA.consumer.assignment()) ?? []
            let assignedB = (try? memberB.consumer.assignment()) ?? []
            return !assignedA.isEmpty && !assignedB.isEmpty && assignedA.union(assignedB).count == 4
        }
        async let pollingA: Void = memberA.poll(until: split)
        async let pollingB: Void = memberB.poll(until: split)
        _ = try await (pollingA, pollingB)
        #expect(memberA.events.contains { if case .revoked(let parts, false) = $0 { !parts.isEmpty } else { false } })
        let afterFirstAssignment = memberA.events.drop { if case .assigned = $0 { false } else { true } }.dropFirst()
        #expect(afterFirstAssignment.first == .rejoining, "A's rejoin is reported before the round's changes")
        #expect(memberA.revokedWhileAssigned, "revoked partitions stay assigned until the revocation is completed")
        // librdkafka's mock cluster sometimes refuses every commit with REBALANCE_IN_PROGRESS until a revocation a
        // join caused is completed (a broker accepts it: the first round of a cooperative rebalance is over), so
        // whether the revocation's commit landed decides what the next owner reads again, not whether it is allowed.
        let landed = memberA.committedAtRevocation
        let assignedA = try memberA.consumer.assignment()
        let assignedB = try memberB.consumer.assignment()
        #expect(assignedA.isDisjoint(with: assignedB))
        #expect(assignedA.union(assignedB) == Set(fixture.allPartitions))

        try await fixture.produce(400, from: 400, with: producer)
        let all: @Sendable () -> Bool = { memberA.processed.indices.union(memberB.processed.indices).count >= 800 }
        async let finishingA: Void = memberA.poll(until: all)
        async let finishingB: Void = memberB.poll(until: all)
        _ = try await (finishingA, finishingB)
        #expect(memberA.processed.indices.union(memberB.processed.indices) == Set(0..<800))
        if landed {
            #expect(memberA.processed.indices.isDisjoint(with: memberB.processed.indices), "nothing is read twice")
        }
        await memberA.consumer.close()
        await memberB.consumer.close()
        await producer.close()
    }

    @Test func pausedMemberStaysInGroupBeyondMaxPollIntervalAndResumes() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        let member = RevokingMember(
            try fixture.consumer(
                group: "group-\(UUID())",
                properties: ["session.timeout.ms": "6000", "max.poll.interval.ms": "6000"],
                revocations: .byApplication))
        let consumer = member.consumer
        try await member.poll { (try? consumer.assignment().count) == 3 }
        let assigned = try consumer.assignment()
        #expect(assigned.count == 3)
        try consumer.pause(assigned)
        try await fixture.produce(300, with: producer)

        // Longer than max.poll.interval.ms (the mock cluster's minimum session timeout is 6 s) of polling while paused.
        try await member.poll(timeout: .seconds(8)) { false }
        #expect(member.processed.count == 0)
        #expect(try consumer.assignment() == assigned)
        let afterAssignment = member.events.drop { if case .assigned = $0 { false } else { true } }.dropFirst()
        #expect(afterAssignment.isEmpty, "no rebalance or rejoin while paused: \(member.events)")

        try consumer.resume(assigned)
        let afterResume = try await consume(consumer) { $0.count >= 300 }
        #expect(Set(afterResume.map(\.index)) == Set(0..<300))
        #expect(afterResume.count == 300)
        await consumer.close()
        await producer.close()
    }

    @Test func reportsConsumerLagFromStatistics() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        try await fixture.produce(600, with: producer)
        let consumer = try fixture.consumer(group: "group-\(UUID())")
        let messages = try await consume(consumer) { $0.count >= 600 }
        var stored: [TopicPartition: Int64] = [:]
        for partition in fixture.allPartitions {
            let offsets = messages.filter { $0.topicPartition == partition }.map(\.offset).sorted()
            stored[partition] = offsets[offsets.count / 2]
        }
        try consumer.storeOffsets(stored)
        try await consumer.commit()
        let expectedLag = fixture.allPartitions.map { partition in
            Int64(messages.filter { $0.topicPartition == partition }.count) - stored[partition]!
        }.reduce(0, +)
        _ = try await poll(consumer) {
            consumer.consumerLag.count == 3 && consumer.consumerLag.values.reduce(0, +) == expectedLag
        }
        #expect(consumer.consumerLag.values.reduce(0, +) == expectedLag)
        await consumer.close()
        await producer.close()
    }
}

/// Indices a member has processed; every processed message has its offset stored.
final class ProcessedSet: Sendable {
    private let state = Mutex<Set<Int>>([])
    var indices: Set<Int> { state.withLock { $0 } }
    var count: Int { state.withLock { $0.count } }
    func insert(_ values: [Int]) { state.withLock { $0.formUnion(values) } }
}

/// Polls, "processes" each message (records it, then stores its offset), until `condition` holds.
func pollProcessing(
    _ consumer: KafkaConsumer, into processed: ProcessedSet, timeout: Duration = .seconds(40),
    until condition: @Sendable () -> Bool
) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while !condition(), ContinuousClock.now < deadline {
        let messages = try await consumer.poll(maxMessages: 500, timeout: .milliseconds(100))
        processed.insert(messages.map(\.index))
        var offsets: [TopicPartition: Int64] = [:]
        for message in messages { offsets[message.topicPartition] = message.offset + 1 }
        try? consumer.storeOffsets(offsets)
    }
}
