import DatoCMS
import Purger
import Testing

@Suite struct GoneCacheTests {
    let start = ContinuousClock.now

    @Test func remembersIdsPerEnvironmentUntilTheyAgeOut() {
        var cache = GoneCache(capacity: 10, maximumAge: .seconds(60))
        cache.record(uploadIDs(1...3), environment: nil, at: start)
        #expect(cache.known(uploadIDs(1...5), environment: nil, at: start + .seconds(59)) == Set(uploadIDs(1...3)))
        #expect(cache.known(uploadIDs(1...5), environment: "staging", at: start + .seconds(59)).isEmpty)
        #expect(cache.known(uploadIDs(1...5), environment: nil, at: start + .seconds(60)).isEmpty)
        #expect(cache.count == 0)
    }

    @Test func forgetsTheOldestConfirmationsAboveItsCapacity() {
        var cache = GoneCache(capacity: 3, maximumAge: .seconds(60))
        for index in 1...5 { cache.record([uploadID(index)], environment: nil, at: start + .seconds(index)) }
        #expect(cache.count == 3)
        #expect(cache.known(uploadIDs(1...5), environment: nil, at: start + .seconds(6)) == Set(uploadIDs(3...5)))
    }

    @Test func aNewConfirmationRenewsAnId() {
        var cache = GoneCache(capacity: 2, maximumAge: .seconds(60))
        cache.record([uploadID(1)], environment: nil, at: start)
        cache.record([uploadID(2)], environment: nil, at: start + .seconds(1))
        cache.record([uploadID(1)], environment: nil, at: start + .seconds(50))
        cache.record([uploadID(3)], environment: nil, at: start + .seconds(51))
        // 2 was the oldest confirmation left; 1 was renewed at 50 s and outlives its first confirmation.
        #expect(
            cache.known(uploadIDs(1...3), environment: nil, at: start + .seconds(100)) == [uploadID(1), uploadID(3)])
    }

    @Test func aCapacityOfZeroRemembersNothing() {
        var cache = GoneCache(capacity: 0, maximumAge: .seconds(60))
        cache.record(uploadIDs(1...3), environment: nil, at: start)
        #expect(cache.known(uploadIDs(1...3), environment: nil, at: start).isEmpty)
    }

    @Test func staysWithinItsCapacityUnderManyRenewals() {
        var cache = GoneCache(capacity: 100, maximumAge: .seconds(3600))
        for round in 0..<200 {
            cache.record(uploadIDs(1...150), environment: nil, at: start + .milliseconds(round))
            #expect(cache.count <= 100)
        }
        #expect(cache.known(uploadIDs(1...150), environment: nil, at: start + .seconds(1)) == Set(uploadIDs(51...150)))
    }
}
