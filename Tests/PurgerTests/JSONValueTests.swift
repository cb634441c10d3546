import Foundation
import Testing

@testable import Purger

@Suite struct JSONValueTests {
    private func written(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        value.write(to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    @Test func writesMembersInOrderWithoutWhitespace() {
        let value = JSONValue.object([
            JSONMember("z", .integer(1)), JSONMember("a", .array([.null, .bool(true), .bool(false)])),
            JSONMember("m", .object([])),
        ])
        #expect(written(value) == #"{"z":1,"a":[null,true,false],"m":{}}"#)
    }

    @Test func escapesQuotesBackslashesAndControlCharactersButNotSlashesOrUnicode() {
        #expect(written(.string("a\"b\\c/d\ne\r\tf\u{1}é😀")) == #""a\"b\\c/d\ne\r\tf\u0001é😀""#)
    }

    @Test func writesWhatItsParserReadsBack() throws {
        let text = #"{"a":[1,-2.5e3,"x\"y",{"b":null}],"c":true}"#
        #expect(written(try JSONParser.parse(Array(text.utf8))) == text)
    }

    @Test func encodesThroughFoundationWithExplicitNulls() throws {
        let value = JSONValue.object([
            JSONMember("n", .null), JSONMember("i", .integer(-7)), JSONMember("d", .number("1.5")),
        ])
        let json = try jsonObject(Array(JSONEncoder().encode(value)))
        #expect(json["n"] is NSNull)
        #expect(json["i"] as? Int == -7)
        #expect(json["d"] as? Double == 1.5)
    }

    @Test(arguments: [
        "1.", ".5", "-", "1e", "+1", "0x10", "tru", "nul", "[1 2]", #"{"a" 1}"#, #"{"a":1 "b":2}"#, "\"abc",
    ])
    func refusesTextOutsideTheGrammar(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
    }
}
