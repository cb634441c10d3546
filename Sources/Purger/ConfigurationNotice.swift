public import Logging

/// Something about the environment that does not stop start-up but that an operator should read: made by
/// ``PurgerConfiguration/loadWithNotices(environment:flags:readFile:)``, logged by `run` once logging is set up.
///
/// Notices name variables, never their values.
public enum ConfigurationNotice: Hashable, Sendable, CustomStringConvertible {
    /// Kubernetes service-link variables (`KAFKA_PORT=tcp://…`, `KAFKA_SERVICE_HOST=…`) that were left out of the
    /// librdkafka passthrough and the setting checks, in name order.
    case serviceLinksIgnored([String])
    /// A `PURGER_*` or `DATOCMS_*` variable that is not a setting, with the nearest setting's name if one is near.
    case unknownVariable(String, suggestion: String?)

    /// The level to log the notice at.
    public var level: Logger.Level {
        switch self {
        case .serviceLinksIgnored: .info
        case .unknownVariable: .warning
        }
    }

    /// The notice as one log line.
    public var description: String {
        switch self {
        case .serviceLinksIgnored(let names):
            "ignoring \(names.count) Kubernetes service-link variable\(names.count == 1 ? "" : "s") "
                + "(neither settings nor librdkafka properties; enableServiceLinks: false stops them): "
                + names.joined(separator: ", ")
        case .unknownVariable(let name, let suggestion?):
            "\(name) is not a setting; did you mean \(suggestion)?"
        case .unknownVariable(let name, nil):
            "\(name) is not a setting; it is ignored"
        }
    }
}

/// The nearest of some known names to a mistyped one, for "did you mean" hints.
enum NearestName {
    /// The candidate at the smallest edit distance from `name`, ignoring letter case, if that distance is small
    /// enough to be a typo: at most a quarter of the name's length, and at least 2. Ties go to the first candidate.
    static func among(_ candidates: [String], to name: String) -> String? {
        let target = Array(name.uppercased().unicodeScalars)
        let limit = max(2, target.count / 4)
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.uppercased().unicodeScalars))
            if distance <= limit, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        return best?.name
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
