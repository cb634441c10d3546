import DatoCMS
import Foundation

/// How a setting's text becomes a value, and back.
///
/// The same parser gives the error message (`must be <expectation>, got "…"`), the values shown in the reference
/// (`1–200`) and the value's text in ``PurgerConfiguration/description``, so the three cannot disagree.
struct SettingParser<Value>: Sendable {
    /// Completes `must be …` in the error about a value the parser refuses.
    let expectation: String
    /// The values accepted, for the reference (`1–200`); `nil` when the meaning says it.
    let values: String?
    /// The value of a trimmed, non-empty text, or `nil` when the text is not one.
    let parse: @Sendable (String) -> Value?
    /// The value as the text that ``parse`` reads back.
    let format: @Sendable (Value) -> String

    /// The same texts, mapped to another type both ways.
    func map<Other>(
        _ transform: @escaping @Sendable (Value) -> Other,
        back: @escaping @Sendable (Other) -> Value
    ) -> SettingParser<Other> {
        let parse = self.parse
        let format = self.format
        return SettingParser<Other>(
            expectation: expectation, values: values, parse: { parse($0).map(transform) },
            format: { format(back($0)) })
    }

    /// The parser of a setting that may be unset; `unset` is what the configuration prints then.
    func optional(unset: String = "<unset>") -> SettingParser<Value?> {
        let parse = self.parse
        let format = self.format
        return SettingParser<Value?>(
            expectation: expectation, values: values,
            // Mapped, not returned: a refused text must stay `nil`, not become a present `nil` value.
            parse: { parse($0).map { Optional.some($0) } }, format: { $0.map(format) ?? unset })
    }
}

extension SettingParser<String> {
    /// Any text.
    static var text: SettingParser<String> {
        SettingParser(expectation: "text", values: nil, parse: { $0 }, format: { $0 })
    }

    /// A DatoCMS environment name, as requests carry it in a header.
    static var environmentName: SettingParser<String> {
        SettingParser(
            expectation: #"a DatoCMS environment name (1 to 100 letters, digits, "-" or "_")"#, values: nil,
            parse: { DeletionRequest.isEnvironmentName($0) ? $0 : nil }, format: { $0 })
    }
}

extension SettingParser<Int> {
    /// A decimal integer within `range`.
    static func integer(_ range: ClosedRange<Int>) -> SettingParser<Int> {
        SettingParser(
            expectation: "an integer from \(range.lowerBound) to \(range.upperBound)",
            values: "\(range.lowerBound)–\(range.upperBound)",
            parse: { text in Int(text).flatMap { range.contains($0) ? $0 : nil } },
            format: { String($0) })
    }
}

extension SettingParser<InFlightBound> {
    /// `auto`, or a decimal integer within `range`.
    static func inFlightBound(_ range: ClosedRange<Int>) -> SettingParser<InFlightBound> {
        let integer = SettingParser<Int>.integer(range)
        return SettingParser(
            expectation: "auto or \(integer.expectation)", values: "`auto`, \(integer.values ?? "")",
            parse: { text in
                text.lowercased() == "auto" ? .auto : integer.parse(text).map(InFlightBound.fixed)
            },
            format: { bound in
                switch bound {
                case .auto: "auto"
                case .fixed(let count): integer.format(count)
                }
            })
    }
}

extension SettingParser<Duration> {
    /// Whole milliseconds within `range`.
    static func milliseconds(_ range: ClosedRange<Int>) -> SettingParser<Duration> {
        SettingParser<Int>.integer(range).map(
            { .milliseconds($0) },
            back: { Int($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) })
    }

    /// Whole seconds within `range`.
    static func seconds(_ range: ClosedRange<Int>) -> SettingParser<Duration> {
        SettingParser<Int>.integer(range).map({ .seconds($0) }, back: { Int($0.components.seconds) })
    }
}

extension SettingParser<URL> {
    /// An http or https URL without query, fragment or credentials; trailing slashes are dropped.
    static var baseURL: SettingParser<URL> {
        SettingParser(
            expectation: "an http or https URL without query or credentials", values: nil,
            parse: { raw in
                var text = raw
                while text.hasSuffix("/") { text.removeLast() }
                guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                    scheme == "http" || scheme == "https", let host = url.host(percentEncoded: true), !host.isEmpty,
                    url.query(percentEncoded: true) == nil, url.fragment(percentEncoded: true) == nil,
                    url.user(percentEncoded: true) == nil
                else { return nil }
                return url
            },
            format: { $0.absoluteString })
    }
}

extension SettingParser<URL> {
    /// A `wss` URL without path, query or credentials, or a `ws` one on a loopback address (tests, local stacks).
    static var pushURL: SettingParser<URL> {
        SettingParser(
            expectation: "a wss URL without path or query (ws only on a loopback address)", values: nil,
            parse: { raw in
                var text = raw
                while text.hasSuffix("/") { text.removeLast() }
                guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                    let host = url.host(percentEncoded: true), !host.isEmpty, url.path.isEmpty,
                    url.query(percentEncoded: true) == nil, url.fragment(percentEncoded: true) == nil,
                    url.user(percentEncoded: true) == nil
                else { return nil }
                let loopback = ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host.lowercased())
                return scheme == "wss" || (scheme == "ws" && loopback) ? url : nil
            },
            format: { $0.absoluteString })
    }
}

extension SettingParser<RateLimit> {
    /// `<requests>/<window>`, like `60/3s`.
    static var rateLimit: SettingParser<RateLimit> {
        SettingParser(
            expectation: "<requests>/<window> with a window in ms, s or m, like 60/3s",
            values: "`<requests>/<window>`, window in `ms`, `s` or `m`",
            parse: { RateLimit(parsing: $0) }, format: { $0.description })
    }
}

extension SettingParser where Value: RawRepresentable<String> & CaseIterable & Sendable {
    /// One of the cases, in any letter case.
    static var choice: SettingParser<Value> {
        let names = Value.allCases.map(\.rawValue)
        return SettingParser(
            expectation: "one of \(names.joined(separator: ", "))",
            values: names.map { "`\($0)`" }.joined(separator: ", "),
            parse: { Value(rawValue: $0.lowercased()) }, format: { $0.rawValue })
    }
}

/// A setting's default: a literal that its parser reads like any given value, or none.
enum SettingDefault<Value: Sendable>: Sendable {
    /// The text the setting takes when neither variable nor flag gives one.
    case literal(String)
    /// No default: the setting is `value` (`nil`) unless given; the text says so for people.
    case absent(String, value: Value)

    var text: String {
        switch self {
        case .literal(let text): text
        case .absent(let text, _): text
        }
    }
}

/// The declaration of one setting: everything loading, redaction and the reference need to know about it.
struct Setting<Value: Sendable>: Sendable {
    /// The environment variable.
    let environmentName: String
    /// Where the value lives in the configuration; read for ``PurgerConfiguration/description``.
    let keyPath: any KeyPath<PurgerConfiguration, Value> & Sendable
    let defaultValue: SettingDefault<Value>
    let parser: SettingParser<Value>
    /// Whether the value must never be printed.
    let isSecret: Bool
    /// One line for people; the parser's ``SettingParser/values`` is appended in parentheses.
    let meaning: String

    init(
        _ environmentName: String,
        _ keyPath: any KeyPath<PurgerConfiguration, Value> & Sendable,
        default defaultValue: SettingDefault<Value>,
        _ parser: SettingParser<Value>,
        secret isSecret: Bool = false,
        _ meaning: String
    ) {
        self.environmentName = environmentName
        self.keyPath = keyPath
        self.defaultValue = defaultValue
        self.parser = parser
        self.isSecret = isSecret
        self.meaning = meaning
    }

    var flagName: String { PurgerConfiguration.flagName(of: environmentName) }

    /// The value the flag or variable gives, else the default.
    func value(in values: SettingValues) throws(ConfigurationError) -> Value {
        if let given = values[environmentName] { return try parse(given) }
        switch defaultValue {
        case .literal(let text): return try parse(SettingValue(text: text, origin: environmentName))
        case .absent(_, let value): return value
        }
    }

    /// The parsed value, or an error naming where the text came from.
    func parse(_ given: SettingValue) throws(ConfigurationError) -> Value {
        guard let value = parser.parse(given.text) else {
            var message = "must be \(parser.expectation)"
            if !isSecret { message += ", got \(SettingValue.quoted(given.text))" }
            // A Service whose name makes this variable's prefix puts its address here; saying so saves a search.
            if ServiceLinks.looksLikeServiceAddress(given.text), !given.origin.hasPrefix("--") {
                message += " (a Kubernetes service link? set it explicitly, or enableServiceLinks: false)"
            }
            throw ConfigurationError(setting: given.origin, message: message)
        }
        return value
    }

    /// The reference row and the configuration's lines for this setting.
    var row: SettingRow {
        let keyPath = keyPath
        let format = parser.format
        let environmentName = environmentName
        let isSecret = isSecret
        let meaning = parser.values.map { "\(self.meaning) (\($0))" } ?? self.meaning
        return SettingRow(
            doc: SettingDoc(
                environmentName: environmentName, flagName: flagName, defaultText: defaultValue.text,
                meaning: meaning, isSecret: isSecret),
            lines: { configuration in
                let value = configuration[keyPath: keyPath]
                guard isSecret else { return ["\(environmentName)=\(format(value))"] }
                // Whether a secret is given is no secret; its text is never formatted at all.
                let isUnset = (value as? any OptionalValue)?.isNone ?? false
                return ["\(environmentName)=\(isUnset ? "<unset>" : "<redacted>")"]
            })
    }
}

/// A setting with its type erased: its reference row, and how ``PurgerConfiguration/description`` prints it.
struct SettingRow: Sendable {
    let doc: SettingDoc
    /// `NAME=value` lines for the configuration, secrets redacted; none for a setting that keeps no value.
    let lines: @Sendable (PurgerConfiguration) -> [String]
}

/// Lets a generic setting tell an unset optional from a value without formatting the value.
private protocol OptionalValue {
    var isNone: Bool { get }
}

extension Optional: OptionalValue {
    fileprivate var isNone: Bool { self == nil }
}
