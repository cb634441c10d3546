import DatoCMS
import DatoCMSSimulator
import Foundation

/// Malformed message values from a seed, for the fault suite: random bytes, truncations, byte flips and invalid
/// UTF-8 in valid requests, wrong types, malformed ids, wrong top-level values, deep nesting, oversized id lists,
/// tombstones, over-long request ids, bad environments and trailing garbage.
///
/// A mutation may still be a valid request (a flipped byte inside a date or an id of the same shape); the suite
/// classifies every value with the worker's own decoder and accounts for it either way.
enum FuzzedRequests {
    /// `count` values (`nil` is a tombstone), mutating the valid requests in `templates`.
    static func make(count: Int, templates: [[UInt8]], validIDs: [UploadID], seed: UInt64) -> [[UInt8]?] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in value(templates: templates, validIDs: validIDs, random: &random) }
    }

    /// A valid request with its fields in a fixed order, so that a seed gives the same bytes in every run.
    static func template(id: String, upload: UploadID, environment: String?) -> [UInt8] {
        var fields = [#""request_id":"\#(id)""#, #""upload_ids":["\#(upload.rawValue)"]"#]
        if let environment { fields.append(#""environment":"\#(environment)""#) }
        fields.append(#""requested_at":"2026-11-28T10:00:00Z""#)
        return Array(("{" + fields.joined(separator: ",") + "}").utf8)
    }

    private static func value(templates: [[UInt8]], validIDs: [UploadID], random: inout SplitMix64) -> [UInt8]? {
        let template = templates[Int(random.next() % UInt64(templates.count))]
        let valid = validIDs[Int(random.next() % UInt64(validIDs.count))].rawValue
        func pick<T>(_ choices: [T]) -> T { choices[Int(random.next() % UInt64(choices.count))] }
        func text(_ json: String) -> [UInt8] { Array(json.utf8) }
        switch random.next() % 12 {
        case 0:
            return (0..<Int(random.next() % 128)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        case 1:
            return Array(template.prefix(Int(random.next() % UInt64(template.count))))
        case 2:
            var value = template
            for _ in 0...(random.next() % 4) {
                value[Int(random.next() % UInt64(value.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            return value
        case 3:
            var value = template
            let invalidUTF8: [[UInt8]] = [
                [0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xF0, 0x28, 0x8C, 0x28], [0xC0, 0xAF],
            ]
            value.insert(contentsOf: pick(invalidUTF8), at: Int(random.next() % UInt64(value.count)))
            return value
        case 4:
            return text(
                pick([
                    #"{"upload_ids": \#(random.next() % 100_000)}"#, #"{"upload_ids": "\#(valid)"}"#,
                    #"{"upload_ids": [\#(random.next() % 1000), true, null]}"#, #"{"upload_id": 20042921}"#,
                    #"{"upload_ids": {"id": "\#(valid)"}}"#, #"{"upload_id": null}"#, #"{"upload_ids": null}"#,
                    #"{"upload_ids": ["\#(valid)"], "request_id": \#(random.next() % 100)}"#,
                    #"{"upload_ids": ["\#(valid)"], "environment": ["staging"]}"#,
                    #"{"upload_ids": ["\#(valid)"], "requested_at": "yesterday"}"#,
                    #"{"upload_ids": ["\#(valid)"], "requested_at": 1764324000}"#, #"{"ids": ["\#(valid)"]}"#,
                ]))
        case 5:
            let bad = pick([
                String(valid.prefix(21)), valid + "A", "1234567890123456", "", "abc def ghi jkl mno pqr", "-1", "1.5",
                "0x1F", String(repeating: "é", count: 22), "\(valid.prefix(21))=", "00000000000000000000000000",
            ])
            return text(#"{"upload_ids": ["\#(valid)", "\#(bad)"], "request_id": "fuzz-bad-id"}"#)
        case 6:
            return text(pick(["[1, 2, 3]", #""\#(valid)""#, "42", "null", "true", "", "   ", "{", "}", "{}"]))
        case 7:
            let depth = 60 + Int(random.next() % 2_000)
            let open = String(repeating: "[", count: depth)
            let close = random.next() % 2 == 0 ? String(repeating: "]", count: depth) : ""
            return text(pick([open + close, #"{"upload_ids": \#(open)"\#(valid)"\#(close)}"#]))
        case 8:
            if random.next() % 10 == 0 {
                let many = (0..<1_001).map { "\"\(100_000 + $0)\"" }.joined(separator: ",")
                return text(#"{"upload_ids": [\#(many)]}"#)
            }
            return text(pick([#"{"upload_ids": []}"#, #"{"upload_ids": [], "upload_id": null}"#]))
        case 9:
            return nil
        case 10:
            return text(
                pick([
                    #"{"upload_id": "\#(valid)", "request_id": "\#(String(repeating: "r", count: 201))"}"#,
                    #"{"upload_id": "\#(valid)", "environment": "no spaces"}"#,
                    #"{"upload_id": "\#(valid)", "environment": "../../etc"}"#,
                    #"{"upload_id": "\#(valid)", "environment": ""}"#,
                    "{\"upload_id\": \"\(valid)\", \"request_id\": \"nul\u{0}byte\"}",
                ]))
        default:
            var value = template
            value += text(pick(["xyz", "{}", ",", "\u{0}", "]"]))
            return value
        }
    }
}
