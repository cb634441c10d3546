import Kafka
import Purger
import Testing

@Suite struct RequestLedgerTests {
    @Test func reportsARequestDoneWhenItsOnlyBatchIsAcknowledged() {
        var ledger = RequestLedger()
        let batch = BatchID()
        #expect(ledger.record(position(0), waitingOn: [batch]) == false)
        #expect(ledger.batchAcknowledged(batch) == [position(0)])
        #expect(ledger.waitingCount == 0)
    }

    @Test func waitsForEveryBatchOfARequestSpanningThree() {
        var ledger = RequestLedger()
        let batches = [BatchID(), BatchID(), BatchID()]
        _ = ledger.record(position(0), waitingOn: Set(batches))
        #expect(ledger.batchAcknowledged(batches[2]).isEmpty)
        #expect(ledger.batchAcknowledged(batches[0]).isEmpty)
        #expect(ledger.batches(awaitedBy: position(0)) == [batches[1]])
        #expect(ledger.batchAcknowledged(batches[1]) == [position(0)])
    }

    @Test func reportsEveryRequestOfABatchThatWaitedOnNothingElseInOrder() {
        var ledger = RequestLedger()
        let shared = BatchID()
        let other = BatchID()
        _ = ledger.record(position(5, partition: 1), waitingOn: [shared])
        _ = ledger.record(position(2), waitingOn: [shared])
        _ = ledger.record(position(3), waitingOn: [shared, other])
        #expect(ledger.requests(waitingOn: shared).count == 3)
        #expect(ledger.batchAcknowledged(shared) == [position(2), position(5, partition: 1)])
        #expect(ledger.batchAcknowledged(other) == [position(3)])
    }

    @Test func saysARequestWaitingOnNothingIsDoneAtOnce() {
        var ledger = RequestLedger()
        #expect(ledger.record(position(0), waitingOn: []) == true)
        #expect(ledger.waitingCount == 0)
    }

    @Test func addsToTheBatchesOfARequestRecordedTwice() {
        var ledger = RequestLedger()
        let first = BatchID()
        let second = BatchID()
        _ = ledger.record(position(0), waitingOn: [first])
        #expect(ledger.record(position(0), waitingOn: []) == false)
        _ = ledger.record(position(0), waitingOn: [second])
        #expect(ledger.batchAcknowledged(first).isEmpty)
        #expect(ledger.batchAcknowledged(second) == [position(0)])
    }

    @Test func ignoresUnknownAndRepeatedAcknowledgements() {
        var ledger = RequestLedger()
        let batch = BatchID()
        _ = ledger.record(position(0), waitingOn: [batch])
        #expect(ledger.batchAcknowledged(BatchID()).isEmpty)
        #expect(ledger.batchAcknowledged(batch) == [position(0)])
        #expect(ledger.batchAcknowledged(batch).isEmpty)
    }

    @Test func forgetsRequestsOfRevokedPartitionsOnly() {
        var ledger = RequestLedger()
        let batch = BatchID()
        _ = ledger.record(position(0, partition: 0), waitingOn: [batch])
        _ = ledger.record(position(0, partition: 1), waitingOn: [batch])
        ledger.forget(partitions: [TopicPartition(topic: "requests", partition: 0)])
        #expect(ledger.waitingCount == 1)
        #expect(ledger.batchAcknowledged(batch) == [position(0, partition: 1)])
    }
}
