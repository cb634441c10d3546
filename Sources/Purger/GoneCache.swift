public import DatoCMS

/// Upload ids this worker has confirmed absent, remembered for a while so that a repeated request for one is
/// answered `not_found` without paying an API request again (CONTRACT §3 and §4, `PURGER_GONE_CACHE_*`).
///
/// Exact — a set, never a probabilistic filter, because a false positive would skip a live upload — and bounded in
/// count (the oldest confirmations are forgotten first) and in age. The CMA lets a client choose an upload's id
/// when creating it, so an id can come back: the age bound is what keeps answering from memory safe. Pure: time is
/// passed in.
public struct GoneCache: Sendable {
    /// One id in one environment (`nil` is the primary environment).
    public struct Key: Hashable, Sendable {
        public var environment: String?
        public var id: UploadID

        public init(environment: String?, id: UploadID) {
            self.environment = environment
            self.id = id
        }
    }

    /// The most ids remembered; `0` remembers nothing.
    public let capacity: Int
    /// How long a confirmation is trusted.
    public let maximumAge: Duration

    /// When each remembered id was last confirmed gone.
    private var confirmedAt: [Key: ContinuousClock.Instant] = [:]
    /// Confirmations in the order they were made; an entry whose time differs from `confirmedAt` is stale.
    private var order: [(key: Key, at: ContinuousClock.Instant)] = []
    private var head = 0

    /// A cache of at most `capacity` ids, each trusted for `maximumAge`.
    public init(capacity: Int, maximumAge: Duration) {
        self.capacity = max(0, capacity)
        self.maximumAge = maximumAge
    }

    /// How many ids are remembered (some may have aged out since the last call that took a time).
    public var count: Int { confirmedAt.count }

    /// Remembers `ids` of `environment` as confirmed gone at `now`.
    public mutating func record(_ ids: some Sequence<UploadID>, environment: String?, at now: ContinuousClock.Instant) {
        guard capacity > 0, maximumAge > .zero else { return }
        for id in ids {
            let key = Key(environment: environment, id: id)
            confirmedAt[key] = now
            order.append((key, now))
        }
        evict(now: now)
    }

    /// The ids of `ids` confirmed gone less than ``maximumAge`` before `now`.
    public mutating func known(
        _ ids: some Sequence<UploadID>, environment: String?, at now: ContinuousClock.Instant
    ) -> Set<UploadID> {
        evict(now: now)
        guard !confirmedAt.isEmpty else { return [] }
        return Set(ids.filter { confirmedAt[Key(environment: environment, id: $0)] != nil })
    }

    /// Forgets confirmations older than the maximum age, then the oldest ones above the capacity.
    private mutating func evict(now: ContinuousClock.Instant) {
        while head < order.count {
            let entry = order[head]
            let current = confirmedAt[entry.key]
            if current != entry.at {
                head += 1  // refreshed later, or already forgotten
            } else if now - entry.at >= maximumAge || confirmedAt.count > capacity {
                confirmedAt[entry.key] = nil
                head += 1
            } else {
                break
            }
        }
        if order.count - head > 2 * capacity + 1024 {
            // Refreshed ids left stale entries: rebuild the order from what is remembered.
            order = confirmedAt.map { (key: $0.key, at: $0.value) }.sorted { $0.at < $1.at }
            head = 0
        } else if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
