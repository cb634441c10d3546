import Foundation
import Kafka
import Purger
import Testing

@Suite struct SourcePositionTests {
    @Test func encodesAsTopicPartitionOffset() throws {
        let json = try jsonObject(Array(JSONEncoder().encode(SourcePosition(topic: "t", partition: 3, offset: 1187))))
        #expect(json.count == 3)
        #expect(json["topic"] as? String == "t")
        #expect(json["partition"] as? Int == 3)
        #expect(json["offset"] as? Int == 1187)
    }

    @Test func decodesWhatItEncodes() throws {
        let original = SourcePosition(topic: "upload-deletion-requests", partition: 7, offset: 9_000_000_000)
        let decoded = try JSONDecoder().decode(SourcePosition.self, from: JSONEncoder().encode(original))
        #expect(decoded == original)
    }

    @Test func namesItsTopicPartition() {
        #expect(position(5, partition: 2, topic: "x").topicPartition == TopicPartition(topic: "x", partition: 2))
    }

    @Test func describesItselfAsTheDefaultRequestID() {
        #expect(position(42, partition: 1, topic: "r").description == "r/1/42")
    }

    @Test func ordersByTopicThenPartitionThenOffset() {
        #expect(position(9, partition: 0, topic: "a") < position(1, partition: 0, topic: "b"))
        #expect(position(9, partition: 0) < position(1, partition: 1))
        #expect(position(1) < position(2))
    }
}
