/// The offsets of one partition that are consumed but not finished, and the offset that may be stored.
///
/// Messages are tracked in the order they are consumed (rising offsets, possibly with gaps left by compaction or
/// transaction markers) and finish in any order. ``committable`` never passes an unfinished message: it is one past
/// the highest tracked offset below which every tracked offset is done.
public struct OffsetTracker: Sendable {
    private var order: [Int64] = []
    private var head = 0
    private var done = Set<Int64>()
    private var highestTracked: Int64?
    private var finishedThrough: Int64?
    private var lastCommitted: Int64?

    /// A tracker that has seen nothing.
    public init() {}

    /// Tracks the message at `offset`, just consumed.
    ///
    /// Returns `false`, and tracks nothing, when `offset` is not above every offset tracked since the last
    /// ``reset()``: a redelivery the caller must not process twice in this tracker.
    public mutating func track(offset: Int64) -> Bool {
        if let highestTracked, offset <= highestTracked { return false }
        highestTracked = offset
        order.append(offset)
        return true
    }

    /// Marks the message at `offset` as done: all its completion events or its dead letter are acknowledged.
    ///
    /// Returns `false` when `offset` is not tracked or already done.
    public mutating func markDone(offset: Int64) -> Bool {
        guard isOutstanding(offset), done.insert(offset).inserted else { return false }
        while head < order.count, done.remove(order[head]) != nil {
            finishedThrough = order[head] + 1
            head += 1
        }
        if head > 64 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        return true
    }

    /// The offset to store (one past the last finished message) when it has advanced past the last one passed to
    /// ``markCommitted(_:)``; `nil` when there is nothing new to store.
    public var committable: Int64? {
        guard let finishedThrough else { return nil }
        if let lastCommitted, lastCommitted >= finishedThrough { return nil }
        return finishedThrough
    }

    /// Records that `offset` was stored, so ``committable`` reports only later progress.
    public mutating func markCommitted(_ offset: Int64) {
        lastCommitted = max(lastCommitted ?? offset, offset)
    }

    /// Forgets what was stored, so that ``committable`` reports the finished offset again (the partition came back
    /// after a lost assignment, and librdkafka dropped the offsets stored for it).
    public mutating func markUnstored() {
        lastCommitted = nil
    }

    /// The number of tracked messages not yet done.
    public var outstanding: Int { order.count - head - done.count }

    /// Forgets everything, as after the partition was revoked.
    public mutating func reset() {
        self = OffsetTracker()
    }

    private func isOutstanding(_ offset: Int64) -> Bool {
        guard head < order.count, offset >= order[head], offset <= order[order.count - 1] else { return false }
        return binarySearch(offset)
    }

    private func binarySearch(_ offset: Int64) -> Bool {
        var low = head
        var high = order.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if order[middle] == offset { return true }
            if order[middle] < offset { low = middle + 1 } else { high = middle - 1 }
        }
        return false
    }
}
