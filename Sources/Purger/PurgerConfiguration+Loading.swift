import DatoCMS
import Foundation
import Kafka

// MARK: - Raw values

/// A setting's raw text and where it came from.
struct SettingValue {
    /// The value, trimmed; never empty.
    let text: String
    /// The environment variable or `--flag` that gave it, for error messages.
    let origin: String

    /// The text quoted for an error message, cut after 60 characters so one bad value cannot flood a log line.
    static func quoted(_ text: String) -> String {
        text.count > 60 ? String(String(text.prefix(60)).debugDescription.dropLast()) + "…\"" : text.debugDescription
    }
}

/// The raw settings of one start-up: environment variables and flags, flags winning.
struct SettingValues {
    private let environment: [String: String]
    private let flags: [String: String]

    init(environment: [String: String], flags: [String: String]) throws(ConfigurationError) {
        let known = PurgerConfiguration.settings.compactMap(\.flagName)
        if let unknown = flags.keys.sorted().first(where: { !known.contains($0) }) {
            var message = "is not a setting"
            if let nearest = NearestName.among(known, to: unknown) { message += "; did you mean --\(nearest)?" }
            throw ConfigurationError(setting: "--\(unknown)", message: message)
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

// MARK: - The environment beyond the settings

extension PurgerConfiguration {
    /// The librdkafka properties of the `KAFKA_*` variables, and the notices about variables that are neither
    /// settings nor properties.
    ///
    /// Kubernetes service-link variables (`KAFKA_PORT=tcp://…` for a Service named `kafka`) are left out and named
    /// in one notice; an unknown `PURGER_*` or `DATOCMS_*` variable gets a notice with the nearest setting's name.
    /// Values are never put into a notice: a mistyped token variable still holds a token.
    static func scan(
        _ environment: [String: String]
    ) throws(ConfigurationError) -> (kafkaProperties: [String: String], notices: [ConfigurationNotice]) {
        var properties: [String: String] = [:]
        var serviceLinks: [String] = []
        var unknown: [ConfigurationNotice] = []
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            let upper = name.uppercased()
            let ours = ["KAFKA_", "PURGER_", "DATOCMS_"].contains { upper.hasPrefix($0) }
            guard ours, !SettingDeclarations.environmentNames.contains(name) else { continue }
            if ServiceLinks.isServiceLink(name: name, value: value) {
                serviceLinks.append(name)
            } else if name.hasPrefix("KAFKA_") {
                let property = name.dropFirst(6).lowercased().replacingOccurrences(of: "_", with: ".")
                guard !property.isEmpty else {
                    throw ConfigurationError(setting: name, message: "names no librdkafka property")
                }
                properties[property] = value
            } else if upper.hasPrefix("KAFKA_") {
                // Variable names are case-sensitive: `kafka_acks` reaches neither librdkafka nor a setting.
                unknown.append(.unknownVariable(name, suggestion: upper))
            } else {
                let suggestion = NearestName.among(SettingDeclarations.orderedEnvironmentNames, to: name)
                unknown.append(.unknownVariable(name, suggestion: suggestion))
            }
        }
        let notices = (serviceLinks.isEmpty ? [] : [ConfigurationNotice.serviceLinksIgnored(serviceLinks)]) + unknown
        return (properties, notices)
    }

    /// Every librdkafka property accepted by librdkafka itself, or a ``ConfigurationError`` naming the variable
    /// of the first one it refuses; `run` checks this before it connects.
    public func checkKafkaProperties() throws(ConfigurationError) {
        if let invalid = KafkaPropertyValidation.firstInvalid(kafkaProperties) {
            throw ConfigurationError(
                setting: Self.variableName(ofKafkaProperty: invalid.property), message: invalid.reason)
        }
    }
}

// MARK: - The API token

extension PurgerConfiguration {
    /// The token from its variable or its file, flags winning as a pair: a token flag overrides a token-file
    /// variable rather than clashing with it.
    static func apiToken(
        _ values: SettingValues,
        readFile: (String) throws -> String
    ) throws(ConfigurationError) -> APIToken? {
        let tokenName = SettingDeclarations.apiToken.environmentName
        let fileName = SettingDeclarations.apiTokenFile
        let useFlags = values.flag(tokenName) != nil || values.flag(fileName) != nil
        let direct = useFlags ? values.flag(tokenName) : values.variable(tokenName)
        let file = useFlags ? values.flag(fileName) : values.variable(fileName)
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
                throw ConfigurationError(
                    setting: file.origin, message: "cannot read the token file \(SettingValue.quoted(file.text))")
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
}
