import DatoCMS
import Testing

struct RateLimitParsingTests {
    @Test(arguments: [
        ("60/3s", 60, Duration.seconds(3)), ("10/500ms", 10, .milliseconds(500)), ("1000/1m", 1000, .seconds(60)),
        ("60/s", 60, .seconds(1)), ("1/2m", 1, .seconds(120)),
    ])
    func parsesRateLimits(text: String, requests: Int, window: Duration) throws {
        let limit = try #require(RateLimit(parsing: text))
        #expect(limit.requests == requests)
        #expect(limit.window == window)
    }

    @Test(arguments: ["", "60", "0/3s", "-1/3s", "60/0s", "60/3", "60/3h", "60/3S", "/3s", "60/3s/1", "a/3s", "60/-3s"])
    func refusesMalformedRateLimits(text: String) {
        #expect(RateLimit(parsing: text) == nil)
    }

    @Test(arguments: ["60/3s", "10/500ms", "1000/2m", "5/1500ms"])
    func writesRateLimitsAsTheyAreRead(text: String) {
        #expect(RateLimit(parsing: text)?.description == text)
    }

}
