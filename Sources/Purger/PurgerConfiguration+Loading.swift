import DatoCMS
import Foundation
import Logging

// MARK: - Raw values

/// A setting's raw text and where it came from.
struct SettingValue {
    /// The value, trimmed; never empty.
    let text: String
    /// The environment variable or `--flag` that gave it, for error messages.
    let origin: String
}

/// The raw settings of one start-up: environment variables and flags, flags winning.
struct SettingValues {
    private let environment: [String: String]
    private let flags: [String: String]

    init(environment: [String: String], flags: [String: String]) throws(ConfigurationError) {
        let known = Set(PurgerConfiguration.settings.compactMap(\.flagName))
        if let unknown = flags.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError(setting: "--\(unknown)", message: "is not a setting")
        }
        self.environment = environment
        self.flags = flags
    }

    /// The flag's value if given, else the variable's.
    subscript(environmentName: String) -> SettingValue? {
        flag(environmentName) ?? variable(environmentName)
    }

    func flag(_ environmentName: String) -> SettingValue? {
        let flagName = PurgerConfiguration.flagName(of: environmentName)
        return Self.nonEmpty(flags[flagName]).map { SettingValue(text: $0, origin: "--\(flagName)") }
    }

    func variable(_ environmentName: String) -> SettingValue? {
        Self.nonEmpty(environment[environmentName]).map { SettingValue(text: $0, origin: environmentName) }
    }

    private static func nonEmpty(_ raw: String?) -> String? {
        guard let trimmed = raw?.trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty else { return nil }
        return trimmed
    }
}

// MARK: - Parsing settings

extension PurgerConfiguration {
    /// The flag name of a setting: the variable without a `PURGER_` prefix, lower-cased, `_` as `-`.
    static func flagName(of environmentName: String) -> String {
        let name = environmentName.hasPrefix("PURGER_") ? String(environmentName.dropFirst(7)) : environmentName
        return name.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    static func kafkaProperties(from environment: [String: String]) throws(ConfigurationError) -> [String: String] {
        var properties: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("KAFKA_") {
            guard name != "KAFKA_BOOTSTRAP_SERVERS", name != "KAFKA_GROUP_ID" else { continue }
            let property = name.dropFirst(6).lowercased().replacingOccurrences(of: "_", with: ".")
            guard !property.isEmpty else {
                throw ConfigurationError(setting: name, message: "names no librdkafka property")
            }
            properties[property] = value
        }
        return properties
    }

    static func apiToken(
        _ values: SettingValues,
        readFile: (String) throws -> String
    ) throws(ConfigurationError) -> APIToken? {
        let useFlags = values.flag("DATOCMS_API_TOKEN") != nil || values.flag("DATOCMS_API_TOKEN_FILE") != nil
        let direct = useFlags ? values.flag("DATOCMS_API_TOKEN") : values.variable("DATOCMS_API_TOKEN")
        let file = useFlags ? values.flag("DATOCMS_API_TOKEN_FILE") : values.variable("DATOCMS_API_TOKEN_FILE")
        switch (direct, file) {
        case (nil, nil):
            return nil
        case (.some(let direct), .some(let file)):
            throw ConfigurationError(
                setting: direct.origin,
                message: "give either the token or a token file (\(file.origin)), not both"
            )
        case (.some(let direct), nil):
            return try validToken(direct.text, origin: direct.origin)
        case (nil, .some(let file)):
            let contents: String
            do {
                contents = try readFile(file.text)
            } catch {
                throw ConfigurationError(setting: file.origin, message: "cannot read the token file \"\(file.text)\"")
            }
            var token = Substring(contents)
            while let last = token.last, last.isNewline { token.removeLast() }
            return try validToken(String(token), origin: file.origin)
        }
    }

    private static func validToken(_ token: String, origin: String) throws(ConfigurationError) -> APIToken {
        guard !token.isEmpty else {
            throw ConfigurationError(setting: origin, message: "the token is empty")
        }
        guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw ConfigurationError(
                setting: origin,
                message: "the token contains whitespace, control or non-ASCII characters"
            )
        }
        return APIToken(token)
    }

    static func baseURL(_ value: SettingValue?) throws(ConfigurationError) -> URL {
        guard let value else { return URL(string: "https://site-api.datocms.com")! }
        var text = value.text
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host(percentEncoded: true), !host.isEmpty, url.query(percentEncoded: true) == nil,
            url.fragment(percentEncoded: true) == nil, url.user(percentEncoded: true) == nil
        else {
            throw ConfigurationError(
                setting: value.origin,
                message: "must be an http or https URL without query or credentials, got \(quoted(value.text))"
            )
        }
        return url
    }

    static func environmentName(_ value: SettingValue?) throws(ConfigurationError) -> String? {
        guard let value else { return nil }
        guard DeletionRequest.isEnvironmentName(value.text) else {
            throw ConfigurationError(
                setting: value.origin,
                message: "must be a DatoCMS environment name (1 to 100 letters, digits, \"-\" or \"_\"), "
                    + "got \(quoted(value.text))"
            )
        }
        return value.text
    }

    static func rateLimit(_ value: SettingValue?) throws(ConfigurationError) -> RateLimit {
        guard let value else { return RateLimit(requests: 60, window: .seconds(3)) }
        guard let limit = RateLimit(parsing: value.text) else {
            throw ConfigurationError(
                setting: value.origin,
                message:
                    "must be <requests>/<window> with a window in ms, s or m, like 60/3s, got \(quoted(value.text))"
            )
        }
        return limit
    }

    static func integer(_ value: SettingValue?, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value else { return nil }
        guard let number = Int(value.text), range.contains(number) else {
            throw ConfigurationError(
                setting: value.origin,
                message: "must be an integer from \(range.lowerBound) to \(range.upperBound), got \(quoted(value.text))"
            )
        }
        return number
    }

    static func choice<Choice: RawRepresentable<String>>(
        _ value: SettingValue?,
        _ choices: [Choice]
    ) throws(ConfigurationError) -> Choice? {
        guard let value else { return nil }
        guard let choice = Choice(rawValue: value.text.lowercased()) else {
            let names = choices.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(
                setting: value.origin, message: "must be one of \(names), got \(quoted(value.text))")
        }
        return choice
    }

    private static func quoted(_ text: String) -> String {
        text.count > 60 ? String(String(text.prefix(60)).debugDescription.dropLast()) + "…\"" : text.debugDescription
    }
}
