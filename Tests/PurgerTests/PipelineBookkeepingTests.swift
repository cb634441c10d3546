import DatoCMS
import DatoCMSSimulator
import Foundation
import Kafka
import Purger
import Testing

/// The pure parts wired as the worker wires them: batcher → ledger → offsets.
@Suite struct PipelineBookkeepingTests {
    struct Pipeline {
        var batcher = Batcher(maxSize: 3, maxWait: .seconds(2))
        var ledger = RequestLedger()
        var offsets = PartitionOffsets()
        let now = ContinuousClock.now

        mutating func consume(_ request: DeletionRequest) -> [BulkOperation] {
            #expect(offsets.track(request.source) == true)
            let result = batcher.add(request, now: now, wallNow: Date(timeIntervalSince1970: 0))
            if ledger.record(request.source, waitingOn: result.dependsOn) {
                #expect(offsets.markDone(request.source) == true)
            }
            return result.flushed
        }

        /// The batch's job finished and its event was acknowledged.
        mutating func acknowledge(_ batch: BatchID) -> [RequestRef] {
            let requests = batcher.completed(batch) ?? []
            for done in ledger.batchAcknowledged(batch) {
                #expect(offsets.markDone(done) == true)
            }
            return requests
        }

        var committed: Int64? { offsets.committable[TopicPartition(topic: "requests", partition: 0)] }
    }

    @Test func storesTheOffsetOfARequestSpanningThreeBatchesOnlyAfterAllThree() {
        var pipeline = Pipeline()
        let flushed = pipeline.consume(request(uploadIDs(1...8), offset: 0))
        let last = pipeline.batcher.flushAll()
        let batches = (flushed + last).map(\.batchID)
        #expect(batches.count == 3)
        _ = pipeline.acknowledge(batches[2])
        _ = pipeline.acknowledge(batches[0])
        #expect(pipeline.committed == nil)
        _ = pipeline.acknowledge(batches[1])
        #expect(pipeline.committed == 1)
    }

    @Test func aRequestThatOnlyJoinsAnInFlightBatchWaitsForThatBatch() throws {
        var pipeline = Pipeline()
        let operation = try #require(pipeline.consume(request(uploadIDs(1...3), offset: 0)).first)
        #expect(pipeline.consume(request(uploadIDs(2...3), offset: 1)).isEmpty)
        #expect(pipeline.committed == nil)
        let requests = pipeline.acknowledge(operation.batchID)
        #expect(requests.map(\.source) == [position(0), position(1)])
        #expect(pipeline.committed == 2)
    }

    @Test func aLaterBatchFinishingFirstDoesNotStoreAnEarlierUnfinishedOffset() throws {
        var pipeline = Pipeline()
        let first = try #require(pipeline.consume(request(uploadIDs(1...3), offset: 0)).first)
        let second = try #require(pipeline.consume(request(uploadIDs(4...6), offset: 1)).first)
        _ = pipeline.acknowledge(second.batchID)
        #expect(pipeline.committed == nil)
        _ = pipeline.acknowledge(first.batchID)
        #expect(pipeline.committed == 2)
    }

    @Test func everyRequestIsListedByExactlyTheBatchesItWaitedOnAndTheyCarryAllItsIDs() {
        var pipeline = Pipeline()
        var events: [BatchID: (ids: [UploadID], requests: [RequestRef])] = [:]
        var dependsOn: [SourcePosition: Set<BatchID>] = [:]
        var inFlight: [BulkOperation] = []
        var generator = SplitMix64(seed: 3)
        var requests: [DeletionRequest] = []
        for offset in 0..<200 {
            let ids = (0..<(Int(generator.next() % 5) + 1)).map { _ in uploadID(Int(generator.next() % 30) + 1) }
            let consumed = request(ids, offset: Int64(offset))
            requests.append(consumed)
            inFlight += pipeline.consume(consumed)
            dependsOn[consumed.source] = pipeline.ledger.batches(awaitedBy: consumed.source)
            if generator.next() % 2 == 0, !inFlight.isEmpty {
                let operation = inFlight.removeFirst()
                events[operation.batchID] = (operation.uploadIDs, pipeline.acknowledge(operation.batchID))
            }
        }
        inFlight += pipeline.batcher.flushAll()
        for operation in inFlight {
            events[operation.batchID] = (operation.uploadIDs, pipeline.acknowledge(operation.batchID))
        }
        for consumed in requests {
            let listing = Set(events.filter { $0.value.requests.contains(consumed.ref) }.keys)
            #expect(
                listing == dependsOn[consumed.source], "\(consumed.ref) is listed by exactly the batches it waited on")
            let carried = Set(listing.flatMap { events[$0]!.ids })
            #expect(carried.isSuperset(of: consumed.uploadIDs), "every id of \(consumed.ref) is in an event listing it")
        }
        #expect(pipeline.committed == 200)
        #expect(pipeline.ledger.waitingCount == 0)
        #expect(pipeline.batcher.isIdle)
    }
}
