import DatoCMSSimulator
import Purger
import Testing

@Suite struct OffsetTrackerTests {
    private func tracker(tracking offsets: [Int64]) -> OffsetTracker {
        var tracker = OffsetTracker()
        for offset in offsets {
            #expect(tracker.track(offset: offset) == true)
        }
        return tracker
    }

    @Test func hasNothingToCommitBeforeAnythingIsDone() {
        let tracker = tracker(tracking: [0, 1, 2])
        #expect(tracker.committable == nil)
        #expect(tracker.outstanding == 3)
        #expect(OffsetTracker().committable == nil)
    }

    @Test func commitsOnePastTheLastDoneOffsetInOrder() {
        var tracker = tracker(tracking: [10, 11, 12])
        #expect(tracker.markDone(offset: 10) == true)
        #expect(tracker.committable == 11)
        #expect(tracker.markDone(offset: 11) == true)
        #expect(tracker.committable == 12)
        #expect(tracker.outstanding == 1)
    }

    @Test func neverSkipsAnUnfinishedOffsetWhenLaterOnesFinishFirst() {
        var tracker = tracker(tracking: [0, 1, 2, 3])
        #expect(tracker.markDone(offset: 3) == true)
        #expect(tracker.markDone(offset: 1) == true)
        #expect(tracker.committable == nil)
        #expect(tracker.markDone(offset: 0) == true)
        #expect(tracker.committable == 2)
        #expect(tracker.markDone(offset: 2) == true)
        #expect(tracker.committable == 4)
        #expect(tracker.outstanding == 0)
    }

    @Test func stepsOverGapsLeftByCompactionOrTransactionMarkers() {
        var tracker = tracker(tracking: [5, 9, 20])
        #expect(tracker.markDone(offset: 9) == true)
        #expect(tracker.committable == nil)
        #expect(tracker.markDone(offset: 5) == true)
        #expect(tracker.committable == 10)
        #expect(tracker.markDone(offset: 20) == true)
        #expect(tracker.committable == 21)
    }

    @Test func reportsOnlyProgressBeyondTheLastCommit() {
        var tracker = tracker(tracking: [0, 1, 2])
        _ = tracker.markDone(offset: 0)
        tracker.markCommitted(1)
        #expect(tracker.committable == nil)
        _ = tracker.markDone(offset: 2)
        #expect(tracker.committable == nil)
        _ = tracker.markDone(offset: 1)
        #expect(tracker.committable == 3)
        tracker.markCommitted(3)
        tracker.markCommitted(2)
        #expect(tracker.committable == nil)
    }

    @Test func refusesRedeliveredOrOutOfOrderOffsets() {
        var tracker = tracker(tracking: [3, 4])
        #expect(tracker.track(offset: 4) == false)
        #expect(tracker.track(offset: 1) == false)
        #expect(tracker.outstanding == 2)
        #expect(tracker.track(offset: 5) == true)
    }

    @Test func refusesToMarkUntrackedOrAlreadyDoneOffsets() {
        var tracker = tracker(tracking: [3, 5])
        #expect(tracker.markDone(offset: 4) == false)
        #expect(tracker.markDone(offset: 2) == false)
        #expect(tracker.markDone(offset: 6) == false)
        #expect(tracker.markDone(offset: 5) == true)
        #expect(tracker.markDone(offset: 5) == false)
        #expect(tracker.markDone(offset: 3) == true)
        #expect(tracker.markDone(offset: 3) == false)
        #expect(tracker.committable == 6)
        #expect(tracker.outstanding == 0)
    }

    @Test func forgetsEverythingOnReset() {
        var tracker = tracker(tracking: [7, 8])
        _ = tracker.markDone(offset: 7)
        tracker.reset()
        #expect(tracker.committable == nil)
        #expect(tracker.outstanding == 0)
        #expect(tracker.track(offset: 7) == true)
        #expect(tracker.markDone(offset: 8) == false)
    }

    @Test func staysCorrectOverManyOffsetsFinishingInScrambledOrder() {
        var tracker = OffsetTracker()
        var generator = SplitMix64(seed: 7)
        var offsets: [Int64] = []
        var next: Int64 = 100
        for _ in 0..<2000 {
            next += Int64(generator.next() % 3) + 1
            offsets.append(next)
            #expect(tracker.track(offset: next) == true)
        }
        var done = Set<Int64>()
        for offset in offsets.shuffled(using: &generator) {
            #expect(tracker.markDone(offset: offset) == true)
            done.insert(offset)
            let expected: Int64?
            if let firstOpen = offsets.firstIndex(where: { !done.contains($0) }) {
                expected = firstOpen == 0 ? nil : offsets[firstOpen - 1] + 1
            } else {
                expected = offsets.last! + 1
            }
            #expect(tracker.committable == expected)
        }
        #expect(tracker.outstanding == 0)
    }
}
