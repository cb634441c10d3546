public import Foundation

/// The identity of one bulk operation, unique across replicas and restarts.
///
/// It is the key of the batch's completion event, and its ``description`` is the lowercase UUID string that
/// appears as `batch_id`.
public struct BatchID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The UUID behind the id.
    public let uuid: UUID

    /// A new random id.
    public init() {
        self.uuid = UUID()
    }

    /// The id carried by `uuid`; use it to replay or test with known ids.
    public init(uuid: UUID) {
        self.uuid = uuid
    }

    /// The lowercase UUID string, e.g. `0f8e2f0c-3b7e-4c1e-9a53-1d1f0c2b7a11`.
    public var description: String { uuid.uuidString.lowercased() }

    /// Orders by the UUID string, to give deterministic output where ids are listed.
    public static func < (lhs: BatchID, rhs: BatchID) -> Bool { lhs.description < rhs.description }
}
