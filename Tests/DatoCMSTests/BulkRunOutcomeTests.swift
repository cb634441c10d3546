import Foundation
import Testing

@testable import DatoCMS

/// How the parts of one bulk operation add up to its outcome (pure: no simulator).
@Suite struct BulkRunOutcomeTests {
    typealias Part = CMAClient.Part

    static func ids(_ range: ClosedRange<Int>) -> [UploadID] {
        range.map { UploadID(validating: String(1_000_000 + $0))! }
    }

    static func outcome(_ parts: [Part], requested: Int) -> BulkDestroyOutcome {
        var run = CMAClient.BulkRun()
        run.parts = parts
        return run.outcome(requested: requested, completedAt: Date())
    }

    @Test func aJobWhoseFailuresWereLookedUpIsExact() {
        let outcome = Self.outcome(
            [Part(kind: .completed, deleted: 7, notFound: 1, stillPresent: Self.ids(9...10), gone: Self.ids(1...8))],
            requested: 10)
        #expect(outcome.status == .completed)
        #expect((outcome.deleted, outcome.notFound, outcome.stillPresent) == (7, 1, 2))
        #expect(outcome.stillPresentIDs == Self.ids(9...10))
        #expect(outcome.counts == .exact)
        #expect(outcome.goneIDs == Self.ids(1...8))
    }

    @Test func idsFoundGoneAfterALostResponseMakeTheCountsInferred() {
        // The lost job's ids: 6 gone (perhaps its deletions), 4 resubmitted; the new job deletes 3, 1 is in use.
        let outcome = Self.outcome(
            [
                Part(kind: .completed, notFound: 6, gone: Self.ids(1...6), exact: false),
                Part(kind: .completed, deleted: 3, stillPresent: Self.ids(10...10), gone: Self.ids(7...9)),
            ], requested: 10)
        #expect((outcome.deleted, outcome.notFound, outcome.stillPresent) == (3, 6, 1))
        #expect(outcome.stillPresentIDs == Self.ids(10...10), "the still-present ids are named all the same")
        #expect(outcome.counts == .inferred)
    }

    @Test func aFailedLookupLeavesTheFailuresUnnamed() {
        let outcome = Self.outcome(
            [
                Part(kind: .completed, deleted: 5, unknown: 3, exact: false),
                Part(kind: .completed, stillPresent: Self.ids(9...10)),
            ], requested: 10)
        #expect((outcome.deleted, outcome.notFound, outcome.stillPresent) == (5, 0, 5))
        #expect(outcome.stillPresentIDs == nil)
        #expect(outcome.counts == .inferred)
        #expect(outcome.goneIDs.isEmpty)
    }

    @Test func idsKnownGoneAloneAreAnExactCompletionWithoutARequest() {
        let outcome = Self.outcome([Part(kind: .completed, notFound: 4, gone: Self.ids(1...4))], requested: 4)
        #expect(outcome.status == .completed)
        #expect(outcome.notFound == 4 && outcome.stillPresentIDs == [])
        #expect(outcome.counts == .exact)
        #expect(outcome.submittedAt == nil && outcome.jobIDs.isEmpty)
    }

    @Test func aTimedOutPartMakesTheOperationTimedOut() {
        let outcome = Self.outcome(
            [
                Part(kind: .completed, deleted: 2, gone: Self.ids(1...2)),
                Part(kind: .timedOut, unknown: 2, exact: false, error: "JOB_TIMEOUT: no result"),
            ], requested: 4)
        #expect(outcome.status == .timedOut)
        #expect(outcome.error == "JOB_TIMEOUT: no result")
        #expect((outcome.deleted, outcome.stillPresent) == (2, 2))
        #expect(outcome.stillPresentIDs == nil && outcome.counts == .inferred)
    }

    @Test func onlyRefusedPartsMakeARejection() {
        let outcome = Self.outcome(
            [Part(kind: .rejected, stillPresent: Self.ids(1...3), error: "INVALID_FIELD")], requested: 3)
        #expect(outcome.status == .rejected)
        #expect(outcome.deleted == 0 && outcome.stillPresentIDs == Self.ids(1...3))
        #expect(outcome.counts == .exact)
    }
}
