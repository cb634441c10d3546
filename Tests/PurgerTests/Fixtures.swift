import DatoCMS
import Foundation
import Purger
import Testing

/// A legacy decimal upload id, `n` as digits.
func uploadID(_ n: Int) -> UploadID {
    UploadID(validating: String(n))!
}

/// Upload ids `range` as legacy decimal ids.
func uploadIDs(_ range: ClosedRange<Int>) -> [UploadID] {
    range.map(uploadID)
}

/// A message of `topic` partition `partition` at `offset`.
func position(_ offset: Int64, partition: Int32 = 0, topic: String = "requests") -> SourcePosition {
    SourcePosition(topic: topic, partition: partition, offset: offset)
}

/// A valid request for `ids`, consumed at `offset`.
func request(
    _ ids: [UploadID],
    offset: Int64,
    partition: Int32 = 0,
    environment: String? = nil
) -> DeletionRequest {
    DeletionRequest(uploadIDs: ids, environment: environment, source: position(offset, partition: partition))
}

/// Parses JSON bytes into Foundation objects for shape assertions.
func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}
