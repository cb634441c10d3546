import Foundation

/// The configuration reference rendered from ``PurgerConfiguration/settings``: plain text for `run --help`,
/// Markdown for the README and CONTRACT §4 (a test keeps both documents equal to ``markdown(_:)``).
public enum SettingsTable {
    /// The reference as plain text: each variable on its own line, then its flag, meaning and default.
    public static func render(_ rows: [SettingDoc] = PurgerConfiguration.settings) -> String {
        let width = rows.map { ($0.flagName.map { "--\($0)" } ?? $0.environmentName).count }.max() ?? 0
        return "SETTINGS (variable, flag, default):\n"
            + rows.map { row in
                let flag = row.flagName.map { "--\($0)" } ?? ""
                let defaultText = row.defaultText.isEmpty ? "" : " [default: \(plain(row.defaultText))]"
                return "  \(row.environmentName)\n    \(flag.padding(toLength: width, withPad: " ", startingAt: 0)) "
                    + "\(plain(meaning(of: row)))\(defaultText)"
            }.joined(separator: "\n")
    }

    /// The reference as a Markdown table, one row per setting, ending in a newline.
    public static func markdown(_ rows: [SettingDoc] = PurgerConfiguration.settings) -> String {
        var lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
        for row in rows {
            let flag = row.flagName.map { "`--\($0)`" } ?? ""
            let defaultText = row.defaultIsLiteral ? "`\(row.defaultText)`" : row.defaultText
            lines.append("| `\(row.environmentName)` | \(flag) | \(defaultText) | \(meaning(of: row)) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func meaning(of row: SettingDoc) -> String {
        row.isSecret ? "\(row.meaning); secret: never printed, logged or put into events or metrics" : row.meaning
    }

    private static func plain(_ text: String) -> String {
        text.filter { $0 != "`" }
    }
}
