import DatoCMSSimulator
import Foundation
import Testing

@testable import Purger

@Suite struct RFC3339Tests {
    @Test(arguments: [
        (1_795_860_000.120, "2026-11-28T10:00:00.120Z"),
        (0.0, "1970-01-01T00:00:00.000Z"),
        (951_782_400.0, "2000-02-29T00:00:00.000Z"),
        (1_709_251_199.999, "2024-02-29T23:59:59.999Z"),
        (-1.0, "1969-12-31T23:59:59.000Z"),
        (253_402_300_799.0, "9999-12-31T23:59:59.000Z"),
    ])
    func writesUTCWithMilliseconds(seconds: Double, text: String) {
        #expect(RFC3339.format(Date(timeIntervalSince1970: seconds)) == text)
    }

    @Test func truncatesRatherThanRoundsToTheMillisecond() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1.9999)) == "1970-01-01T00:00:01.999Z")
    }

    @Test func readsWhatItWrites() throws {
        var generator = SplitMix64(seed: 11)
        for _ in 0..<500 {
            let milliseconds = Int64(generator.next() % 10_000_000_000_000)
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let parsed = try #require(RFC3339.parse(RFC3339.format(date)))
            #expect(abs(parsed.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_5)
        }
    }
}
