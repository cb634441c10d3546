import Kafka
import Purger
import Testing

@Suite struct PartitionOffsetsTests {
    @Test func tracksEachPartitionOnItsOwn() {
        var offsets = PartitionOffsets()
        #expect(offsets.track(position(0, partition: 0)) == true)
        #expect(offsets.track(position(0, partition: 1)) == true)
        #expect(offsets.track(position(1, partition: 1)) == true)
        #expect(offsets.markDone(position(0, partition: 1)) == true)
        #expect(offsets.committable == [TopicPartition(topic: "requests", partition: 1): 1])
        #expect(offsets.outstanding == 2)
        #expect(offsets.outstanding(in: TopicPartition(topic: "requests", partition: 0)) == 1)
    }

    @Test func reportsOnlyUncommittedProgress() {
        var offsets = PartitionOffsets()
        _ = offsets.track(position(4))
        _ = offsets.markDone(position(4))
        offsets.markCommitted(offsets.committable)
        #expect(offsets.committable.isEmpty)
    }

    @Test func forgetsRevokedPartitions() {
        var offsets = PartitionOffsets()
        _ = offsets.track(position(4, partition: 2))
        offsets.revoke([TopicPartition(topic: "requests", partition: 2)])
        #expect(offsets.outstanding == 0)
        #expect(offsets.markDone(position(4, partition: 2)) == false)
        #expect(offsets.track(position(4, partition: 2)) == true)
    }

    @Test func refusesToMarkAMessageOfAnUnknownPartition() {
        var offsets = PartitionOffsets()
        #expect(offsets.markDone(position(0, partition: 9)) == false)
    }
}
