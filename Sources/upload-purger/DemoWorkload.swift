import DatoCMS
import DatoCMSSimulator
import Foundation

/// The demo's requests: a realistic mix drawn from the simulator's seeded uploads, reproducible from a seed.
///
/// Most requests carry one id, one in ten carries 2–21; a third go to the `staging` sandbox; ids repeat across
/// requests; some ids are unknown to DatoCMS (legacy decimal ids that never existed); about one request in 200
/// is malformed in one of the ways the dead-letter topic exists for.
struct DemoWorkload: Sendable {
    /// The produced message values, in order.
    var values: [[UInt8]] = []
    /// Request id → environment and ids, for the valid requests.
    var valid: [String: (environment: String?, ids: [UploadID])] = [:]
    /// How many values are malformed on purpose.
    var malformed = 0

    init(count: Int, primary: [UploadID], staging: [UploadID], seed: UInt64 = 2026) {
        var random = SplitMix64(seed: seed)
        for index in 0..<count {
            if random.next() % 200 == 0 {
                values.append(Self.malformedValue(kind: Int(random.next() % 5)))
                malformed += 1
                continue
            }
            let environment: String? = random.next() % 3 == 0 ? "staging" : nil
            let pool = environment == nil ? primary : staging
            let size = random.next() % 10 == 0 ? Int(random.next() % 20) + 2 : 1
            var ids: [UploadID] = []
            for _ in 0..<size {
                if random.next() % 40 == 0 {
                    ids.append(UploadID(validating: String(900_000 + random.next() % 99_999))!)
                } else {
                    ids.append(pool[Int(random.next() % UInt64(pool.count))])
                }
            }
            let requestID = "demo-\(index)"
            valid[requestID] = (environment, ids)
            var object: [String: Any] = [
                "request_id": requestID, "upload_ids": ids.map(\.rawValue),
                "requested_at": Date().formatted(.iso8601),
            ]
            if let environment { object["environment"] = environment }
            values.append(Array(try! JSONSerialization.data(withJSONObject: object)))
        }
    }

    private static func malformedValue(kind: Int) -> [UInt8] {
        switch kind {
        case 0: Array(#"{"upload_ids": ["q0VNpiNQSkG6z0lif_O1zg""#.utf8)
        case 1: Array(#"{"upload_ids": "q0VNpiNQSkG6z0lif_O1zg"}"#.utf8)
        case 2: Array(#"{"upload_ids": ["not an id"]}"#.utf8)
        case 3: Array(#"{"upload_ids": []}"#.utf8)
        default: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D]
        }
    }

    /// Distinct ids per environment over all valid requests.
    var distinctIDs: Int {
        var byEnvironment: [String?: Set<UploadID>] = [:]
        for request in valid.values { byEnvironment[request.environment, default: []].formUnion(request.ids) }
        return byEnvironment.values.reduce(0) { $0 + $1.count }
    }
}
