import Foundation

/// Recognises the variables Kubernetes injects for every Service in the namespace (unless the pod spec says
/// `enableServiceLinks: false`), so that a Service named `kafka` or `purger-…` does not pass for a librdkafka
/// property or a mistyped setting.
///
/// For a Service `kafka` with cluster IP 10.96.4.7 and port 9092 named `client`, the kubelet sets
/// `KAFKA_SERVICE_HOST=10.96.4.7`, `KAFKA_SERVICE_PORT=9092`, `KAFKA_SERVICE_PORT_CLIENT=9092`,
/// `KAFKA_PORT=tcp://10.96.4.7:9092`, `KAFKA_PORT_9092_TCP=tcp://10.96.4.7:9092`, `KAFKA_PORT_9092_TCP_PROTO=tcp`,
/// `KAFKA_PORT_9092_TCP_PORT=9092` and `KAFKA_PORT_9092_TCP_ADDR=10.96.4.7`; the prefix is the Service name
/// upper-cased with `-` as `_`. A name counts only when its value has the shape the kubelet gives it too: no
/// librdkafka property has such a name (checked against 2.0.2, the one installed, and librdkafka's master of
/// July 2026; the nearest is `sasl.kerberos.service.name`), and checking the value keeps a future property that
/// did reaching librdkafka whenever its value is an ordinary one.
enum ServiceLinks {
    /// Whether `name=value` is a Kubernetes service-link variable.
    static func isServiceLink(name: String, value rawValue: String) -> Bool {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        let value = rawValue.trimmingCharacters(in: .whitespaces)
        // `k` is where the suffix starts; the Service name before it may itself contain `SERVICE` or `PORT`.
        for k in parts.indices.dropFirst() where isServiceName(parts[..<k]) {
            let suffix = Array(parts[k...])
            if matches(suffix: suffix, value: value) { return true }
        }
        return false
    }

    /// Whether a value is what the kubelet puts into `<SERVICE>_PORT`: `tcp://10.96.4.7:9092`.
    static func looksLikeServiceAddress(_ value: String) -> Bool {
        address(value) != nil
    }

    private static func matches(suffix: [String], value: String) -> Bool {
        switch suffix.count {
        case 1 where suffix[0] == "PORT":
            return address(value) != nil
        case 2 where suffix == ["SERVICE", "HOST"]:
            return isIPAddress(value)
        case 2 where suffix == ["SERVICE", "PORT"]:
            return port(value) != nil
        case 3... where suffix[0] == "SERVICE" && suffix[1] == "PORT":
            // The port's name, `-` as `_`: letters and digits, at most 15 characters in all.
            return suffix[2...].allSatisfy(isNameComponent) && port(value) != nil
        case 3 where suffix[0] == "PORT":
            guard let number = port(suffix[1]), let proto = protocolName(suffix[2]),
                let address = address(value)
            else { return false }
            return address.port == number && address.proto == proto
        case 4 where suffix[0] == "PORT":
            guard let number = port(suffix[1]), let proto = protocolName(suffix[2]) else { return false }
            switch suffix[3] {
            case "PROTO": return value == proto
            case "PORT": return port(value) == number
            case "ADDR": return isIPAddress(value)
            default: return false
            }
        default:
            return false
        }
    }

    /// A Service name as a variable prefix: a DNS label upper-cased, `-` as `_`, starting with a letter.
    private static func isServiceName(_ parts: ArraySlice<String>) -> Bool {
        guard let first = parts.first?.unicodeScalars.first, ("A"..."Z").contains(first) else { return false }
        return parts.allSatisfy(isNameComponent)
    }

    private static func isNameComponent(_ part: String) -> Bool {
        !part.isEmpty && part.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }

    private static func protocolName(_ part: String) -> String? {
        ["TCP", "UDP", "SCTP"].contains(part) ? part.lowercased() : nil
    }

    private static func port(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCII), let number = Int(text),
            (1...65_535).contains(number)
        else { return nil }
        return number
    }

    /// `tcp://10.96.4.7:9092` or `tcp://[fd00::1]:9092` split up.
    private static func address(_ value: String) -> (proto: String, port: Int)? {
        guard let schemeEnd = value.range(of: "://") else { return nil }
        let proto = String(value[..<schemeEnd.lowerBound])
        guard ["tcp", "udp", "sctp"].contains(proto) else { return nil }
        let hostPort = value[schemeEnd.upperBound...]
        guard let colon = hostPort.lastIndex(of: ":"),
            let number = port(String(hostPort[hostPort.index(after: colon)...]))
        else { return nil }
        var host = hostPort[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return isIPAddress(String(host)) ? (proto, number) : nil
    }

    /// A cluster IP, v4 or v6; the kubelet never puts a host name into these variables.
    private static func isIPAddress(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4 {
            return octets.allSatisfy { octet in
                octet.count <= 3 && octet.allSatisfy(\.isASCII) && Int(octet).map { (0...255).contains($0) } == true
            }
        }
        return text.contains(":") && text.count <= 45
            && text.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "." }
    }
}
