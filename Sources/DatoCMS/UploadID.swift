/// The id of a DatoCMS upload (asset).
///
/// DatoCMS writes new ids as 22 characters of URL-safe base64 (a UUID), and older projects still carry
/// legacy decimal ids of 1 to 15 digits. An `UploadID` is always one of the two: the only way to make one
/// from untrusted text is ``init(validating:)``.
public struct UploadID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The id exactly as DatoCMS writes it.
    public let rawValue: String

    /// Accepts `text` only when it is a well-formed upload id; returns `nil` otherwise.
    public init?(validating text: String) {
        guard Self.isValid(text.utf8) else { return nil }
        self.rawValue = text
    }

    public var description: String { rawValue }

    public static func < (lhs: UploadID, rhs: UploadID) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func isValid(_ bytes: String.UTF8View) -> Bool {
        let count = bytes.count
        if count == 22 {
            return bytes.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
        }
        guard (1...15).contains(count) else { return false }
        return bytes.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
