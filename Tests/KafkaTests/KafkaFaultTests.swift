import Foundation
import Kafka
import Testing

@Suite("Kafka faults on the mock cluster", .serialized, .timeLimit(.minutes(5)))
struct KafkaFaultTests {
    @Test func retriableProduceErrorsAreRetriedWithoutDuplicates() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        // Warm up so the injected errors hit real produce requests, not the first metadata round.
        try await fixture.produce(3, from: 0, with: producer)
        fixture.cluster.pushRequestErrors(
            .produce,
            errors: [
                .notLeaderForPartition, .requestTimedOut, .notEnoughReplicas, .leaderNotAvailable, .requestTimedOut,
            ])
        try await fixture.produce(497, from: 3, with: producer)

        let consumer = try fixture.consumer(group: "group-\(UUID())")
        let messages = try await consume(consumer) { $0.count >= 500 }
        let extra = try await consume(consumer, timeout: .seconds(1)) { _ in false }
        #expect(messages.count + extra.count == 500)
        #expect(Set(messages.map(\.index)) == Set(0..<500))
        await consumer.close()
        await producer.close()
    }

    @Test func nonRetriableProduceErrorReachesTheCallerTyped() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        try await fixture.produce(1, with: producer)
        fixture.cluster.pushRequestErrors(.produce, errors: [.topicAuthorizationFailed])
        let error = await #expect(throws: KafkaError.self) {
            _ = try await producer.send(KafkaRecord(topic: fixture.topic, key: nil, value: Array("x".utf8)))
        }
        #expect(error?.code == .topicAuthorizationFailed)
        #expect(error?.isRetriable == false)
        await producer.close()
    }

    @Test func consumptionResumesAfterABrokerComesBack() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        try await fixture.produce(1_500, with: producer)
        let consumer = try fixture.consumer(group: "group-\(UUID())")
        var seen = Set(try await consume(consumer) { $0.count >= 500 }.map(\.index))

        try fixture.cluster.setBrokerDown(2)
        async let producing: Void = fixture.produce(1_500, from: 1_500, with: producer)
        seen.formUnion(try await consume(consumer, timeout: .seconds(3)) { _ in false }.map(\.index))
        try fixture.cluster.setBrokerUp(2)
        try await producing
        // Messages read before the broker went down may be read again after it is back (at-least-once), so the
        // wait is for the union of what was read, not for a count.
        let before = seen
        seen.formUnion(
            try await consume(consumer, timeout: .seconds(60)) { before.union($0.map(\.index)).count >= 3_000 }.map(
                \.index))
        #expect(seen == Set(0..<3_000))
        await consumer.close()
        await producer.close()
    }

    @Test func closeReturnsWithinItsDeadlineWhenEveryBrokerIsDown() async throws {
        let fixture = try KafkaFixture()
        let producer = try fixture.producer()
        try await fixture.produce(100, with: producer)
        await producer.close()
        let consumer = try fixture.consumer(group: "group-\(UUID())")
        _ = try await consume(consumer) { $0.count >= 100 }
        for broker in Int32(1)...3 { try fixture.cluster.setBrokerDown(broker) }

        let started = ContinuousClock.now
        await consumer.close(timeout: .seconds(2))
        // The deadline is 2 s; the slack covers one last in-progress poll on a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(6))
    }

    @Test func readsConsumerLagAndTheJoinStateFromAStatisticsDocument() throws {
        let json = """
            {"cgrp":{"state":"up","join_state":"wait-join"},
             "topics":{"requests":{"partitions":{"0":{"consumer_lag":12},"1":{"consumer_lag":-1},"-1":{"consumer_lag":0}}}}}
            """
        let statistics = try #require(KafkaStatistics(json: Data(json.utf8)))
        #expect(statistics.consumerLag == [TopicPartition(topic: "requests", partition: 0): 12])
        #expect(statistics.groupJoinState == "wait-join")
        #expect(statistics.isRejoining)
        let steady = try #require(KafkaStatistics(json: Data(#"{"cgrp":{"join_state":"steady"}}"#.utf8)))
        #expect(!steady.isRejoining)
        let producer = try #require(KafkaStatistics(json: Data(#"{"topics":{}}"#.utf8)))
        #expect(producer.groupJoinState == nil && !producer.isRejoining)
        #expect(KafkaStatistics(json: Data("not json".utf8)) == nil)
    }
}
