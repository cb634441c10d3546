/// A JSON value as this module reads and writes it: every value keeps its JSON type, numbers keep their exact text,
/// and object members keep their order.
///
/// Foundation's readers are lenient in ways the contract is not (trailing commas, guessing UTF-16), and its writer
/// does not keep key order on every platform; ``JSONParser`` and ``write(to:)`` are strict and deterministic.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// A number, as its validated RFC 8259 text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// An integer as a JSON number.
    static func integer(_ value: some BinaryInteger) -> JSONValue {
        .number(String(value))
    }

    /// `.string(value)`, or `.null` when `value` is `nil`.
    static func stringOrNull(_ value: String?) -> JSONValue {
        value.map(JSONValue.string) ?? .null
    }

    /// The JSON type with its article, for messages: "a string", "null", "an array".
    var typeDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// One `"key": value` member of a JSON object.
struct JSONMember: Sendable {
    let key: String
    let value: JSONValue

    init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}
