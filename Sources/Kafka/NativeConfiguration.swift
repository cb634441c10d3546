import CRdKafka

/// Builds an `rd_kafka_conf_t` from properties, in order, so that later properties win.
///
/// Ownership of the returned configuration passes to `rd_kafka_new` on success; on failure the caller
/// destroys it.
enum NativeConfiguration {
    static func make(_ layers: [[String: String]]) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var merged: [String: String] = [:]
        for layer in layers { merged.merge(layer) { _, new in new } }
        for (name, value) in merged.sorted(by: { $0.key < $1.key }) {
            var errorText = [CChar](repeating: 0, count: 512)
            let result = rd_kafka_conf_set(conf, name, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                // The value is left out on purpose: a property may hold a secret (sasl.password).
                let reason = result == RD_KAFKA_CONF_UNKNOWN ? "unknown property" : "invalid value"
                throw KafkaError(
                    code: .invalidConfiguration, message: "librdkafka property \(name): \(reason)", isRetriable: false)
            }
        }
        return conf
    }
}

/// Checks librdkafka properties before anything connects.
public enum KafkaPropertyValidation {
    /// The first property (in name order) that librdkafka does not know or whose value it refuses, with the
    /// reason; `nil` when all are accepted. The value is never part of the reason (it may be a secret).
    public static func firstInvalid(_ properties: [String: String]) -> (property: String, reason: String)? {
        let conf = rd_kafka_conf_new()!
        defer { rd_kafka_conf_destroy(conf) }
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            var errorText = [CChar](repeating: 0, count: 512)
            switch rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) {
            case RD_KAFKA_CONF_OK: continue
            case RD_KAFKA_CONF_UNKNOWN: return (name, "librdkafka has no property \(name)")
            default: return (name, "librdkafka refuses the value of \(name)")
            }
        }
        return nil
    }
}
