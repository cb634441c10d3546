import DatoCMS
import DatoCMSSimulator
import Foundation

/// The benchmark's requests: `count` requests for the primary environment carrying 1 to `maxIDsPerRequest` ids each
/// (uniformly), every id used exactly once, so that each strategy has the same work and every id is deletable.
///
/// Sizes come from a seed, so the same command line produces the same workload.
struct BenchWorkload: Sendable {
    /// One request: its id and upload ids.
    struct Request: Sendable {
        var id: String
        var uploadIDs: [UploadID]
    }

    /// The requests, in production order.
    let requests: [Request]

    /// Upload ids per request, drawn from the seed; their sum is how many uploads the simulator must seed.
    static func sizes(count: Int, maxIDsPerRequest: Int, seed: UInt64) -> [Int] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int(random.next() % UInt64(maxIDsPerRequest)) + 1 }
    }

    /// Assigns `pool`'s ids in order to requests of the given sizes. With `recurrence` > 0, each id is instead,
    /// with that probability, one an earlier request already named (drawn from the last few thousand ids named): upstream
    /// pipelines repeat themselves (retries, replays, overlapping cleanups).
    ///
    /// - Precondition: `pool` holds at least `sizes.reduce(0, +)` ids.
    init(sizes: [Int], pool: [UploadID], recurrence: Double = 0, seed: UInt64 = 2027) {
        precondition(pool.count >= sizes.reduce(0, +), "the simulator seeded too few uploads")
        var random = SplitMix64(seed: seed)
        var next = 0
        var recent: [UploadID] = []
        var requests: [Request] = []
        requests.reserveCapacity(sizes.count)
        for (index, size) in sizes.enumerated() {
            var ids: [UploadID] = []
            var seen: Set<UploadID> = []
            for _ in 0..<size {
                let repeated =
                    !recent.isEmpty && Double(random.next() % 1_000_000) / 1_000_000 < recurrence
                    ? recent[Int(random.next() % UInt64(recent.count))] : nil
                if let repeated, seen.insert(repeated).inserted {
                    ids.append(repeated)
                } else {
                    ids.append(pool[next])
                    seen.insert(pool[next])
                    next += 1
                }
            }
            recent += ids
            if recent.count > 4_000 { recent.removeFirst(recent.count - 2_000) }
            requests.append(Request(id: "bench-\(index)", uploadIDs: ids))
        }
        self.requests = requests
    }

    /// Distinct upload ids over all requests.
    var distinctIDs: Int { Set(requests.flatMap(\.uploadIDs)).count }

    /// Upload ids over all requests.
    var totalIDs: Int { requests.reduce(0) { $0 + $1.uploadIDs.count } }

    /// The message value of `request`, stamped with `requestedAt`.
    static func value(of request: Request, requestedAt: String) -> [UInt8] {
        let ids = request.uploadIDs.map { "\"\($0.rawValue)\"" }.joined(separator: ",")
        return Array(
            #"{"request_id":"\#(request.id)","upload_ids":[\#(ids)],"requested_at":"\#(requestedAt)"}"#.utf8)
    }
}
