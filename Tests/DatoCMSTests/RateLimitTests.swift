import DatoCMS
import Testing

@Suite struct RateLimitTests {
    @Test func parsesRequestsPerWindowWithUnits() {
        #expect(RateLimit(parsing: "60/3s") == RateLimit(requests: 60, window: .seconds(3)))
        #expect(RateLimit(parsing: "30/1s") == RateLimit(requests: 30, window: .seconds(1)))
        #expect(RateLimit(parsing: "100/500ms") == RateLimit(requests: 100, window: .milliseconds(500)))
        #expect(RateLimit(parsing: " 10/1m ") == RateLimit(requests: 10, window: .seconds(60)))
    }

    @Test(arguments: ["", "60", "60/", "/3s", "0/3s", "60/0s", "-1/3s", "60/3h", "60/3", "sixty/3s", "60/3s/1"])
    func rejectsMalformedRateLimits(_ text: String) {
        #expect(RateLimit(parsing: text) == nil)
    }

    @Test func describesItselfInTheParsableForm() {
        #expect(RateLimit(requests: 60, window: .seconds(3)).description == "60/3s")
        #expect(RateLimit(requests: 100, window: .milliseconds(500)).description == "100/500ms")
        #expect(RateLimit(parsing: RateLimit.datoCMSDefault.description) == .datoCMSDefault)
    }

    @Test func apiTokenNeverPrintsItsSecret() {
        let token = APIToken("s3cr3t-token")
        #expect(token.description == "<redacted>")
        #expect("\(token)" == "<redacted>")
        #expect(String(reflecting: token) == "<redacted>")
        var dumped = ""
        dump(token, to: &dumped)
        #expect(!dumped.contains("s3cr3t"))
        let configuration = CMAClientConfiguration(apiToken: token)
        #expect(!String(describing: configuration).contains("s3cr3t"))
    }
}
