import DatoCMS
import DatoCMSSimulator
import Foundation
import Purger
import Testing

@Suite struct BatcherTests {
    let start = ContinuousClock.now
    let wallStart = Date(timeIntervalSince1970: 1_795_860_000)

    private func at(_ milliseconds: Int) -> ContinuousClock.Instant {
        start.advanced(by: .milliseconds(milliseconds))
    }

    private func wall(_ milliseconds: Int) -> Date {
        wallStart.addingTimeInterval(Double(milliseconds) / 1000)
    }

    private func add(
        _ batcher: inout Batcher,
        _ request: DeletionRequest,
        at milliseconds: Int = 0
    ) -> Batcher.AddResult {
        batcher.add(request, now: at(milliseconds), wallNow: wall(milliseconds))
    }

    // MARK: - Size

    @Test func holdsIDsUntilTheBatchIsFull() {
        var batcher = Batcher(maxSize: 3, maxWait: .seconds(2))
        let result = add(&batcher, request(uploadIDs(1...2), offset: 0))
        #expect(result.flushed.isEmpty)
        #expect(result.dependsOn == [batcher.pendingBatch(for: nil)!])
        #expect(batcher.pendingCount == 2)
    }

    @Test func flushesExactlyWhenTheBatchReachesMaxSize() throws {
        var batcher = Batcher(maxSize: 3, maxWait: .seconds(2))
        _ = add(&batcher, request(uploadIDs(1...2), offset: 0))
        let result = add(&batcher, request(uploadIDs(3...3), offset: 1), at: 100)
        let operation = try #require(result.flushed.first)
        #expect(result.flushed.count == 1)
        #expect(operation.uploadIDs == uploadIDs(1...3))
        #expect(operation.requests.map(\.source) == [position(0), position(1)])
        #expect(operation.firstEnqueuedAt == at(0))
        #expect(operation.firstEnqueuedWallTime == wall(0))
        #expect(operation.environment == nil)
        #expect(result.dependsOn == [operation.batchID])
        #expect(batcher.pendingCount == 0)
        #expect(batcher.inFlightCount == 1)
        #expect(batcher.nextDeadline() == nil)
    }

    @Test func splitsARequestWithMoreIDsThanFitAcrossSeveralBatches() {
        var batcher = Batcher(maxSize: 4, maxWait: .seconds(2))
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0))
        let spanning = request(uploadIDs(2...10), offset: 1)
        let result = add(&batcher, spanning)
        #expect(result.flushed.map(\.uploadIDs) == [uploadIDs(1...4), uploadIDs(5...8)])
        #expect(result.flushed.allSatisfy { $0.requests.contains(spanning.ref) })
        let remainder = batcher.pendingBatch(for: nil)!
        #expect(batcher.pendingCount == 2)
        #expect(result.dependsOn == Set(result.flushed.map(\.batchID) + [remainder]))
        #expect(batcher.requests(of: remainder) == [spanning.ref])
    }

    @Test func startsAFreshBatchAfterAFlushWithItsOwnFirstEnqueuedTime() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        _ = add(&batcher, request(uploadIDs(1...2), offset: 0), at: 0)
        _ = add(&batcher, request(uploadIDs(3...3), offset: 1), at: 500)
        #expect(batcher.nextDeadline() == at(2500))
        let flushed = batcher.flushAll()
        #expect(flushed.first?.firstEnqueuedWallTime == wall(500))
    }

    @Test func batchesOfSizeOneFlushEveryID() {
        var batcher = Batcher(maxSize: 1, maxWait: .seconds(2))
        let result = add(&batcher, request(uploadIDs(1...3), offset: 0))
        #expect(result.flushed.map(\.uploadIDs) == [[uploadID(1)], [uploadID(2)], [uploadID(3)]])
        #expect(batcher.pendingCount == 0)
    }

    // MARK: - Age

    @Test func flushesWhenOldestRequestReachesMaxWait() {
        var batcher = Batcher(maxSize: 200, maxWait: .milliseconds(2000))
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0), at: 0)
        _ = add(&batcher, request(uploadIDs(2...2), offset: 1), at: 1500)
        #expect(batcher.nextDeadline() == at(2000))
        #expect(batcher.flushDue(now: at(1999)).isEmpty)
        let flushed = batcher.flushDue(now: at(2000))
        #expect(flushed.map(\.uploadIDs) == [uploadIDs(1...2)])
        #expect(batcher.nextDeadline() == nil)
        #expect(batcher.flushDue(now: at(10_000)).isEmpty)
    }

    @Test func flushesOnlyTheEnvironmentsThatAreDueOldestFirst() {
        var batcher = Batcher(maxSize: 200, maxWait: .milliseconds(1000))
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0, environment: "b"), at: 100)
        _ = add(&batcher, request(uploadIDs(2...2), offset: 1, environment: "a"), at: 200)
        _ = add(&batcher, request(uploadIDs(3...3), offset: 2), at: 0)
        _ = add(&batcher, request(uploadIDs(4...4), offset: 3, environment: "c"), at: 900)
        #expect(batcher.nextDeadline() == at(1000))
        let flushed = batcher.flushDue(now: at(1200))
        #expect(flushed.map(\.environment) == [nil, "b", "a"])
        #expect(batcher.nextDeadline() == at(1900))
        #expect(batcher.pendingCount == 1)
    }

    @Test func flushAllEmptiesEveryPendingBatchOldestFirst() {
        var batcher = Batcher(maxSize: 200, maxWait: .seconds(60))
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0, environment: "x"), at: 10)
        _ = add(&batcher, request(uploadIDs(1...1), offset: 1), at: 5)
        let flushed = batcher.flushAll()
        #expect(flushed.map(\.environment) == [nil, "x"])
        #expect(batcher.pendingCount == 0)
        #expect(batcher.inFlightCount == 2)
        #expect(batcher.flushAll().isEmpty)
    }

    // MARK: - Environments

    @Test func keepsOneBatchPerEnvironment() {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0, environment: "sandbox"))
        let primary = add(&batcher, request(uploadIDs(1...1), offset: 1))
        #expect(primary.flushed.isEmpty)
        #expect(batcher.pendingCount == 2)
        #expect(batcher.pendingBatch(for: "sandbox") != batcher.pendingBatch(for: nil))
    }

    @Test func putsRequestsWithoutEnvironmentIntoTheDefaultEnvironment() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2), defaultEnvironment: "main")
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0))
        let result = add(&batcher, request(uploadIDs(2...2), offset: 1, environment: "main"))
        let operation = try #require(result.flushed.first)
        #expect(operation.environment == "main")
        #expect(operation.uploadIDs == uploadIDs(1...2))
        #expect(batcher.pendingBatch(for: nil) == nil)
    }

    // MARK: - Deduplication

    @Test func doesNotAddAnIDThatIsAlreadyPendingButAttachesTheRequest() {
        var batcher = Batcher(maxSize: 3, maxWait: .seconds(2))
        let first = add(&batcher, request(uploadIDs(1...2), offset: 0))
        let second = add(&batcher, request(uploadIDs(2...2), offset: 1))
        let batch = batcher.pendingBatch(for: nil)!
        #expect(second.dependsOn == [batch])
        #expect(first.dependsOn == [batch])
        #expect(batcher.pendingCount == 2)
        #expect(batcher.requests(of: batch)?.map(\.source) == [position(0), position(1)])
    }

    /// An id repeated in one request after the batch carrying it filled up and flushed joins that flight instead of
    /// starting a new batch with it.
    @Test func anIDRepeatedInARequestAfterItsBatchFlushedJoinsTheFlight() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let ids = uploadIDs(1...3)
        let result = add(&batcher, request([ids[0], ids[1], ids[0], ids[2]], offset: 0))
        let flight = try #require(result.flushed.first)
        #expect(result.flushed.count == 1)
        #expect(flight.uploadIDs == [ids[0], ids[1]])
        #expect(batcher.pendingCount == 1)
        #expect(result.dependsOn == [flight.batchID, batcher.pendingBatch(for: nil)!])
    }

    @Test func attachesARequestWhoseIDsAreAllInFlightWithoutSubmittingThemAgain() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let operation = try #require(add(&batcher, request(uploadIDs(1...2), offset: 0)).flushed.first)
        let late = request(uploadIDs(1...2), offset: 1)
        let result = add(&batcher, late)
        #expect(result.flushed.isEmpty)
        #expect(result.dependsOn == [operation.batchID])
        #expect(batcher.pendingCount == 0)
        #expect(batcher.requests(of: operation.batchID)?.map(\.source) == [position(0), position(1)])
        #expect(batcher.completed(operation.batchID)?.map(\.source) == [position(0), position(1)])
    }

    @Test func splitsARequestBetweenInFlightAndPendingBatches() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let operation = try #require(add(&batcher, request(uploadIDs(1...2), offset: 0)).flushed.first)
        let result = add(&batcher, request([uploadID(2), uploadID(3)], offset: 1))
        let pending = try #require(batcher.pendingBatch(for: nil))
        #expect(result.dependsOn == [operation.batchID, pending])
        #expect(batcher.pendingCount == 1)
    }

    @Test func doesNotShareInFlightIDsAcrossEnvironments() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let operation = try #require(add(&batcher, request(uploadIDs(1...2), offset: 0)).flushed.first)
        let result = add(&batcher, request(uploadIDs(1...2), offset: 1, environment: "sandbox"))
        #expect(result.flushed.count == 1)
        #expect(!result.dependsOn.contains(operation.batchID))
    }

    @Test func submitsAnIDAgainOnceTheBatchCarryingItCompleted() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let operation = try #require(add(&batcher, request(uploadIDs(1...2), offset: 0)).flushed.first)
        _ = batcher.completed(operation.batchID)
        let again = add(&batcher, request(uploadIDs(1...2), offset: 1))
        #expect(again.flushed.map(\.uploadIDs) == [uploadIDs(1...2)])
        #expect(again.flushed.first?.batchID != operation.batchID)
    }

    @Test func listsARequestOnceInABatchEvenWhenItAttachesSeveralTimes() throws {
        var batcher = Batcher(maxSize: 3, maxWait: .seconds(2))
        let operation = try #require(add(&batcher, request(uploadIDs(1...3), offset: 0)).flushed.first)
        _ = add(&batcher, request(uploadIDs(1...3), offset: 1))
        #expect(batcher.completed(operation.batchID)?.count == 2)
    }

    // MARK: - Completion

    @Test func completedReturnsNilForUnknownOrPendingOrAlreadyCompletedBatches() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let operation = try #require(add(&batcher, request(uploadIDs(1...2), offset: 0)).flushed.first)
        _ = add(&batcher, request(uploadIDs(3...3), offset: 1))
        #expect(batcher.completed(BatchID()) == nil)
        #expect(batcher.completed(batcher.pendingBatch(for: nil)!) == nil)
        #expect(batcher.completed(operation.batchID) != nil)
        #expect(batcher.completed(operation.batchID) == nil)
        #expect(batcher.requests(of: operation.batchID) == nil)
    }

    @Test func completingOneBatchLeavesOtherInFlightIDsDeduplicated() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        let first = try #require(add(&batcher, request(uploadIDs(1...2), offset: 0)).flushed.first)
        let second = try #require(add(&batcher, request(uploadIDs(3...4), offset: 1)).flushed.first)
        _ = batcher.completed(first.batchID)
        let result = add(&batcher, request(uploadIDs(3...4), offset: 2))
        #expect(result.flushed.isEmpty)
        #expect(result.dependsOn == [second.batchID])
    }

    @Test func isIdleOnlyWhenNothingIsPendingOrInFlight() throws {
        var batcher = Batcher(maxSize: 2, maxWait: .seconds(2))
        #expect(batcher.isIdle)
        _ = add(&batcher, request(uploadIDs(1...1), offset: 0))
        #expect(!batcher.isIdle)
        let operation = try #require(batcher.flushAll().first)
        #expect(!batcher.isIdle)
        _ = batcher.completed(operation.batchID)
        #expect(batcher.isIdle)
    }

    // MARK: - Invariants

    @Test func neverSubmitsAnIDTwiceWhileItIsInFlightAndNeverExceedsMaxSize() {
        var batcher = Batcher(maxSize: 7, maxWait: .seconds(2))
        var inFlight: [BatchID: Set<UploadID>] = [:]
        var generator = SplitMix64(seed: 42)
        for offset in 0..<500 {
            let count = Int(generator.next() % 20) + 1
            let ids = (0..<count).map { _ in uploadID(Int(generator.next() % 60) + 1) }
            let result = add(&batcher, request(ids, offset: Int64(offset)), at: offset)
            for operation in result.flushed + batcher.flushDue(now: at(offset)) {
                let submitted = Set(operation.uploadIDs)
                #expect(submitted.count == operation.uploadIDs.count)
                #expect((1...7).contains(operation.uploadIDs.count))
                #expect(inFlight.values.allSatisfy { $0.isDisjoint(with: submitted) })
                inFlight[operation.batchID] = submitted
            }
            #expect(batcher.pendingCount <= 7)
            if generator.next() % 3 == 0, let done = inFlight.keys.min() {
                inFlight[done] = nil
                #expect(batcher.completed(done) != nil)
            }
        }
    }
}
