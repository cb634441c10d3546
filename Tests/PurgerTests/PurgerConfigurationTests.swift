import DatoCMS
import Foundation
import Kafka
import Logging
import Purger
import Testing

@Suite struct PurgerConfigurationTests {
    struct FileMissing: Error {}

    private let secret = "s3cr3t-token-value"

    private func load(
        _ environment: [String: String] = [:],
        flags: [String: String] = [:],
        files: [String: String] = [:]
    ) throws(ConfigurationError) -> PurgerConfiguration {
        try PurgerConfiguration.load(environment: environment, flags: flags) { path in
            guard let contents = files[path] else { throw FileMissing() }
            return contents
        }
    }

    private func error(
        _ environment: [String: String] = [:],
        flags: [String: String] = [:],
        files: [String: String] = [:]
    ) -> ConfigurationError? {
        do throws(ConfigurationError) {
            _ = try load(environment, flags: flags, files: files)
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Defaults and sources

    @Test func appliesTheContractDefaults() throws {
        let configuration = try load()
        #expect(configuration.kafkaBootstrapServers == nil)
        #expect(configuration.kafkaGroupID == "upload-purger")
        #expect(configuration.kafkaProperties.isEmpty)
        #expect(configuration.requestsTopic == "upload-deletion-requests")
        #expect(configuration.resultsTopic == "upload-deletion-results")
        #expect(configuration.dlqTopic == "upload-deletion-requests.dlq")
        #expect(configuration.apiToken == nil)
        #expect(configuration.datocmsBaseURL.absoluteString == "https://site-api.datocms.com")
        #expect(configuration.datocmsEnvironment == nil)
        #expect(configuration.rateLimit == RateLimit(requests: 60, window: .seconds(3)))
        #expect(configuration.batchMaxSize == 200)
        #expect(configuration.batchMaxWait == .milliseconds(2000))
        #expect(configuration.maxInFlightJobs == .auto)
        #expect(configuration.jobTimeout == .seconds(600))
        #expect(configuration.shutdownTimeout == .seconds(30))
        #expect(configuration.httpPort == 9464)
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .json)
    }

    @Test func readsEverySettingFromTheEnvironment() throws {
        let configuration = try load([
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "KAFKA_GROUP_ID": "g",
            "PURGER_REQUESTS_TOPIC": "in",
            "PURGER_RESULTS_TOPIC": "out",
            "PURGER_DLQ_TOPIC": "dead",
            "DATOCMS_API_TOKEN": secret,
            "DATOCMS_BASE_URL": "http://localhost:8080/",
            "DATOCMS_ENVIRONMENT": "staging",
            "DATOCMS_RATE_LIMIT": "10/500ms",
            "PURGER_BATCH_MAX_SIZE": "50",
            "PURGER_BATCH_MAX_WAIT_MS": "250",
            "PURGER_MAX_IN_FLIGHT_JOBS": "2",
            "PURGER_JOB_TIMEOUT_S": "60",
            "PURGER_SHUTDOWN_TIMEOUT_S": "5",
            "PURGER_HTTP_PORT": "0",
            "PURGER_LOG_LEVEL": "debug",
            "PURGER_LOG_FORMAT": "text",
        ])
        #expect(configuration.kafkaBootstrapServers == "kafka:9092")
        #expect(configuration.kafkaGroupID == "g")
        #expect(configuration.kafkaProperties.isEmpty)
        #expect(configuration.requestsTopic == "in")
        #expect(configuration.resultsTopic == "out")
        #expect(configuration.dlqTopic == "dead")
        #expect(configuration.apiToken?.secret == secret)
        #expect(configuration.datocmsBaseURL.absoluteString == "http://localhost:8080")
        #expect(configuration.datocmsEnvironment == "staging")
        #expect(configuration.rateLimit == RateLimit(requests: 10, window: .milliseconds(500)))
        #expect(configuration.batchMaxSize == 50)
        #expect(configuration.batchMaxWait == .milliseconds(250))
        #expect(configuration.maxInFlightJobs == .fixed(2))
        #expect(configuration.jobTimeout == .seconds(60))
        #expect(configuration.shutdownTimeout == .seconds(5))
        #expect(configuration.httpPort == 0)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logFormat == .text)
    }

    @Test func letsFlagsWinOverEnvironmentVariables() throws {
        let configuration = try load(
            ["PURGER_BATCH_MAX_SIZE": "10", "KAFKA_BOOTSTRAP_SERVERS": "env:9092"],
            flags: ["batch-max-size": "20", "kafka-bootstrap-servers": "flag:9092"]
        )
        #expect(configuration.batchMaxSize == 20)
        #expect(configuration.kafkaBootstrapServers == "flag:9092")
    }

    @Test func namesTheFlagWhenAFlagGaveTheBadValue() {
        #expect(
            error(["PURGER_BATCH_MAX_SIZE": "10"], flags: ["batch-max-size": "500"])?.description
                == #"--batch-max-size: must be an integer from 1 to 200, got "500""#
        )
    }

    @Test func refusesUnknownFlags() {
        #expect(
            error(flags: ["batch-size": "5"])
                == ConfigurationError(setting: "--batch-size", message: "is not a setting"))
    }

    @Test func suggestsTheNearestFlagForAMistypedOne() {
        #expect(
            error(flags: ["batch-max-siz": "5"])
                == ConfigurationError(
                    setting: "--batch-max-siz", message: "is not a setting; did you mean --batch-max-size?"))
    }

    @Test func treatsEmptyValuesAsUnset() throws {
        let configuration = try load(["PURGER_BATCH_MAX_SIZE": "  ", "KAFKA_BOOTSTRAP_SERVERS": ""])
        #expect(configuration.batchMaxSize == 200)
        #expect(configuration.kafkaBootstrapServers == nil)
    }

    @Test func trimsSurroundingWhitespace() throws {
        #expect(try load(["PURGER_BATCH_MAX_SIZE": " 42\n"]).batchMaxSize == 42)
    }

    @Test func passesKafkaPropertiesThrough() throws {
        let configuration = try load([
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISMS": "PLAIN",
            "KAFKA_BOOTSTRAP_SERVERS": "b:9092",
            "KAFKA_GROUP_ID": "g",
            "KAFKAESQUE": "ignored",
        ])
        #expect(configuration.kafkaProperties == ["security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN"])
    }

    // MARK: - Validation

    @Test(arguments: [
        ("PURGER_BATCH_MAX_SIZE", "500", #"must be an integer from 1 to 200, got "500""#),
        ("PURGER_BATCH_MAX_SIZE", "0", #"must be an integer from 1 to 200, got "0""#),
        ("PURGER_BATCH_MAX_SIZE", "ten", #"must be an integer from 1 to 200, got "ten""#),
        ("PURGER_BATCH_MAX_SIZE", "1.5", #"must be an integer from 1 to 200, got "1.5""#),
        ("PURGER_BATCH_MAX_WAIT_MS", "0", #"must be an integer from 1 to 3600000, got "0""#),
        ("PURGER_MAX_IN_FLIGHT_JOBS", "0", #"must be auto or an integer from 1 to 10000, got "0""#),
        ("PURGER_MAX_IN_FLIGHT_JOBS", "adaptive", #"must be auto or an integer from 1 to 10000, got "adaptive""#),
        ("PURGER_JOB_TIMEOUT_S", "-1", #"must be an integer from 1 to 604800, got "-1""#),
        ("PURGER_SHUTDOWN_TIMEOUT_S", "0", #"must be an integer from 1 to 86400, got "0""#),
        ("PURGER_HTTP_PORT", "65536", #"must be an integer from 0 to 65535, got "65536""#),
        (
            "PURGER_LOG_LEVEL", "verbose",
            #"must be one of trace, debug, info, notice, warning, error, critical, got "verbose""#
        ),
        ("PURGER_LOG_FORMAT", "xml", #"must be one of json, text, got "xml""#),
        (
            "DATOCMS_RATE_LIMIT", "60 per 3s",
            #"must be <requests>/<window> with a window in ms, s or m, like 60/3s, got "60 per 3s""#
        ),
        (
            "DATOCMS_BASE_URL", "ftp://example.com",
            #"must be an http or https URL without query or credentials, got "ftp://example.com""#
        ),
    ])
    func refusesInvalidValuesNamingTheSetting(setting: String, value: String, message: String) {
        let refused = error([setting: value])
        #expect(refused == ConfigurationError(setting: setting, message: message))
        #expect(refused?.description == "\(setting): \(message)")
        #expect(refused?.description.contains("\n") == false)
    }

    @Test(arguments: ["example.com", "https://", "https://user:pw@example.com", "https://x.com/?a=1", "not a url"])
    func refusesBaseURLsThatAreNotPlainHTTP(url: String) {
        #expect(error(["DATOCMS_BASE_URL": url])?.setting == "DATOCMS_BASE_URL")
    }

    @Test func acceptsABaseURLWithAPath() throws {
        let url = try load(["DATOCMS_BASE_URL": "https://proxy.internal/datocms//"]).datocmsBaseURL
        #expect(url.absoluteString == "https://proxy.internal/datocms")
    }

    @Test func refusesAnEnvironmentNameThatCannotTravelInAHeader() {
        #expect(error(["DATOCMS_ENVIRONMENT": "a b"])?.setting == "DATOCMS_ENVIRONMENT")
    }

    @Test func acceptsLogLevelsInAnyCase() throws {
        #expect(try load(["PURGER_LOG_LEVEL": "WARNING"]).logLevel == .warning)
    }

    @Test func refusesAnEmptyKafkaPropertyName() {
        #expect(error(["KAFKA_": "x"])?.setting == "KAFKA_")
    }

    // MARK: - API token

    @Test func readsTheTokenFromAFileTrimmingTrailingNewlines() throws {
        let configuration = try load(
            ["DATOCMS_API_TOKEN_FILE": "/run/secrets/token"],
            files: ["/run/secrets/token": secret + "\r\n\n"]
        )
        #expect(configuration.apiToken?.secret == secret)
    }

    @Test func refusesBothTokenAndTokenFile() {
        let refused = error(
            ["DATOCMS_API_TOKEN": secret, "DATOCMS_API_TOKEN_FILE": "/t"],
            files: ["/t": secret]
        )
        #expect(refused?.setting == "DATOCMS_API_TOKEN")
        #expect(refused?.description.contains(secret) == false)
    }

    @Test func letsATokenFlagWinOverATokenFileVariable() throws {
        let configuration = try load(["DATOCMS_API_TOKEN_FILE": "/missing"], flags: ["datocms-api-token": secret])
        #expect(configuration.apiToken?.secret == secret)
    }

    @Test func refusesAnEmptyTokenFile() {
        #expect(
            error(["DATOCMS_API_TOKEN_FILE": "/t"], files: ["/t": "\n"])
                == ConfigurationError(setting: "DATOCMS_API_TOKEN_FILE", message: "the token is empty")
        )
    }

    @Test func refusesAnUnreadableTokenFile() {
        #expect(
            error(["DATOCMS_API_TOKEN_FILE": "/nope"])
                == ConfigurationError(
                    setting: "DATOCMS_API_TOKEN_FILE",
                    message: #"cannot read the token file "/nope""#
                )
        )
    }

    @Test(arguments: ["two words", "tab\there", "line\nbreak", "ünïcode"])
    func refusesTokensWithWhitespaceOrControlCharactersWithoutQuotingThem(token: String) {
        let fromVariable = error(["DATOCMS_API_TOKEN": "x" + token + "x"])
        let fromFile = error(["DATOCMS_API_TOKEN_FILE": "/t"], files: ["/t": "x" + token + "x"])
        for refused in [fromVariable, fromFile] {
            #expect(refused != nil)
            #expect(refused?.description.contains(token) == false)
        }
    }

    @Test func neverPrintsTheToken() throws {
        let configuration = try load([
            "DATOCMS_API_TOKEN": secret,
            "KAFKA_SASL_PASSWORD": "kafka-password-value",
            "KAFKA_SASL_USERNAME": "alice",
        ])
        let printed = [
            configuration.description, String(describing: configuration), String(reflecting: configuration),
            String(describing: configuration.apiToken!), "\(configuration.apiToken!)",
        ]
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in printed + [dumped] {
            #expect(!text.contains(secret))
            #expect(!text.contains("kafka-password-value"))
        }
        #expect(configuration.description.contains("DATOCMS_API_TOKEN=<redacted>"))
        #expect(configuration.description.contains("KAFKA_SASL_PASSWORD=<redacted>"))
        #expect(configuration.description.contains("KAFKA_SASL_USERNAME=alice"))
    }

    @Test func jobResultsArePushedByDefaultAndThePushURLMustBeSecureOffLoopback() throws {
        let defaults = try load()
        #expect(defaults.jobResults == .auto)
        #expect(try load(["DATOCMS_JOB_RESULTS": "AUTO"]).jobResults == .auto)
        #expect(defaults.pushURL.absoluteString == "wss://ws-mt1.pusher.com")
        #expect(defaults.pushKey == "75e6ef0fe5d39f481626")
        #expect(try load(["DATOCMS_JOB_RESULTS": "POLL"]).jobResults == .poll)
        #expect(try load(["DATOCMS_PUSH_URL": "ws://127.0.0.1:8080/"]).pushURL.absoluteString == "ws://127.0.0.1:8080")
        #expect(try load(["DATOCMS_PUSH_URL": "wss://ws-eu.pusher.com"]).pushURL.host == "ws-eu.pusher.com")
        for refused in ["ws://ws-mt1.pusher.com", "https://ws-mt1.pusher.com", "wss://host/app/key", "wss://u:p@host"] {
            let refusal = error(["DATOCMS_PUSH_URL": refused])
            #expect(refusal?.setting == "DATOCMS_PUSH_URL", "\(refused)")
            #expect(refusal?.message.hasPrefix("must be a wss URL") == true, "\(refused)")
        }
        #expect(
            error(["DATOCMS_JOB_RESULTS": "sometimes"])?.message == #"must be one of auto, push, poll, got "sometimes""#
        )
    }

    @Test func printsOneLinePerSetting() throws {
        let lines = try load().description.split(separator: "\n")
        #expect(lines.count == 22)
        #expect(lines.contains("DATOCMS_API_TOKEN=<unset>"))
        #expect(lines.contains("PURGER_BATCH_MAX_WAIT_MS=2000"))
        #expect(lines.contains("DATOCMS_RATE_LIMIT=60/3s"))
    }

    // MARK: - Run requirements

    @Test func requiresBrokersAndTokenForRun() throws {
        #expect(throws: ConfigurationError(setting: "KAFKA_BOOTSTRAP_SERVERS", message: "is required for run")) {
            try load(["DATOCMS_API_TOKEN": secret]).requireForRun()
        }
        #expect(throws: ConfigurationError.self) { try load(["KAFKA_BOOTSTRAP_SERVERS": "k:9092"]).requireForRun() }
        let required = try load(["KAFKA_BOOTSTRAP_SERVERS": "k:9092", "DATOCMS_API_TOKEN": secret]).requireForRun()
        #expect(required.kafkaBootstrapServers == "k:9092")
        #expect(required.apiToken.secret == secret)
    }

    // MARK: - Reference table

    @Test func documentsEverySettingWithAFlagThatLoadAccepts() throws {
        let flags = PurgerConfiguration.settings.compactMap(\.flagName)
        #expect(flags.contains("batch-max-size"))
        #expect(flags.contains("kafka-bootstrap-servers"))
        #expect(flags.contains("datocms-api-token-file"))
        #expect(flags.contains("log-format"))
        #expect(PurgerConfiguration.settings.count == 24)
        #expect(Set(PurgerConfiguration.settings.map(\.environmentName)).count == 24)
        for flag in flags {
            #expect(error(flags: [flag: "x"])?.message != "is not a setting", "\(flag)")
        }
    }

    @Test func rendersTheReadmeAndContractTablesFromTheDeclarations() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let rendered = SettingsTable.markdown()
        for document in ["README.md", "docs/CONTRACT.md"] {
            let text = try String(contentsOf: repository.appendingPathComponent(document), encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let marker = try #require(
                lines.firstIndex { $0.hasPrefix("<!-- Rendered from PurgerConfiguration.settings") }, "\(document)")
            let table = lines[(marker + 1)...].prefix { $0.hasPrefix("|") }.map { $0 + "\n" }.joined()
            // On failure, `rendered` is the table to paste into the document.
            #expect(table == rendered, "\(document) differs from SettingsTable.markdown()")
        }
    }

    @Test func putsEverySettingIntoTheHelpText() {
        let help = SettingsTable.render()
        for row in PurgerConfiguration.settings {
            #expect(help.contains("  \(row.environmentName)\n"), "\(row.environmentName)")
            if let flag = row.flagName { #expect(help.contains("--\(flag) "), "\(flag)") }
        }
        #expect(!help.contains("`"))
        #expect(help.contains("ids per bulk operation (1–200) [default: 200]"))
        #expect(help.contains("[default: (required for run)]"))
        #expect(!SettingsTable.markdown().contains(secret))
    }

    @Test func readsBackWhatItPrints() throws {
        let configuration = try load(
            [
                "KAFKA_BOOTSTRAP_SERVERS": "k:9092", "KAFKA_GROUP_ID": "g", "KAFKA_CLIENT_ID": "c",
                "PURGER_REQUESTS_TOPIC": "in", "PURGER_RESULTS_TOPIC": "out", "PURGER_DLQ_TOPIC": "dead",
                "DATOCMS_BASE_URL": "http://localhost:1", "DATOCMS_ENVIRONMENT": "staging",
                "DATOCMS_RATE_LIMIT": "10/500ms", "PURGER_BATCH_MAX_SIZE": "50", "PURGER_BATCH_MAX_WAIT_MS": "1500",
                "PURGER_MAX_IN_FLIGHT_JOBS": "3", "PURGER_JOB_TIMEOUT_S": "61", "PURGER_SHUTDOWN_TIMEOUT_S": "7",
                "PURGER_HTTP_PORT": "1234", "PURGER_LOG_LEVEL": "notice", "PURGER_LOG_FORMAT": "text",
            ])
        var environment: [String: String] = [:]
        for line in configuration.description.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts[1] != "<unset>" { environment[parts[0]] = parts[1] }
        }
        #expect(try load(environment).description == configuration.description)
        #expect(configuration.description.contains("PURGER_BATCH_MAX_WAIT_MS=1500"))
        #expect(configuration.description.contains("KAFKA_CLIENT_ID=c"))
    }

    // MARK: - Variables that are not settings

    /// What the kubelet sets for a Service `kafka` (port 9092 named `client`), and for the Services a Strimzi
    /// cluster named `kafka` and a Service `purger-metrics` bring.
    private static let serviceLinks = [
        "KAFKA_PORT": "tcp://10.96.4.7:9092",
        "KAFKA_PORT_9092_TCP": "tcp://10.96.4.7:9092",
        "KAFKA_PORT_9092_TCP_ADDR": "10.96.4.7",
        "KAFKA_PORT_9092_TCP_PORT": "9092",
        "KAFKA_PORT_9092_TCP_PROTO": "tcp",
        "KAFKA_SERVICE_HOST": "10.96.4.7",
        "KAFKA_SERVICE_PORT": "9092",
        "KAFKA_SERVICE_PORT_CLIENT": "9092",
        "KAFKA_KAFKA_BOOTSTRAP_PORT": "tcp://[fd00:10:96::4]:9091",
        "KAFKA_KAFKA_BOOTSTRAP_PORT_9091_TCP_ADDR": "fd00:10:96::4",
        "KAFKA_KAFKA_BOOTSTRAP_SERVICE_PORT_TCP_REPLICATION": "9091",
        "PURGER_METRICS_SERVICE_HOST": "10.96.0.12",
        "PURGER_METRICS_PORT_9464_TCP": "tcp://10.96.0.12:9464",
        "DATOCMS_PROXY_PORT_443_TCP_PROTO": "tcp",
    ]

    @Test func ignoresKubernetesServiceLinksAndNamesThemInOneNotice() throws {
        var environment = Self.serviceLinks
        environment["KAFKA_SECURITY_PROTOCOL"] = "SASL_SSL"
        environment["KAFKA_BOOTSTRAP_SERVERS"] = "kafka:9092"
        let (configuration, notices) = try PurgerConfiguration.loadWithNotices(environment: environment)
        #expect(configuration.kafkaProperties == ["security.protocol": "SASL_SSL"])
        #expect(notices == [.serviceLinksIgnored(Self.serviceLinks.keys.sorted())])
        #expect(notices.first?.level == .info)
        let line = try #require(notices.first).description
        #expect(line.hasPrefix("ignoring 14 Kubernetes service-link variables"))
        #expect(line.hasSuffix(Self.serviceLinks.keys.sorted().joined(separator: ", ")))
        #expect(!line.contains("10.96."))
        try configuration.checkKafkaProperties()
    }

    @Test func leavesNoServiceLinkNameThatLibrdkafkaKnows() {
        // Were one of these a property, ignoring it would drop an operator's setting.
        for name in Self.serviceLinks.keys where name.hasPrefix("KAFKA_") {
            let property = name.dropFirst(6).lowercased().replacingOccurrences(of: "_", with: ".")
            let invalid = KafkaPropertyValidation.firstInvalid([property: "1"])
            #expect(invalid?.reason == "librdkafka has no property \(property)", "\(name)")
        }
        for property in ["sasl.kerberos.service.name", "security.protocol", "broker.address.family"] {
            #expect(KafkaPropertyValidation.firstInvalid([property: "x"])?.reason.contains("no property") != true)
        }
    }

    @Test(arguments: [
        ("KAFKA_PORT", "9092"),  // the kubelet puts an address here, never a bare port
        ("KAFKA_SERVICE_HOST", "kafka.example.com"),
        ("KAFKA_PORT_9092_TCP", "tcp://10.96.4.7:9093"),
        ("KAFKA_PORT_9092_TCP_PROTO", "udp"),
        ("KAFKA_SERVICE_PORT", "http"),
        ("KAFKA_PORT_9092_TCPX_ADDR", "10.96.4.7"),
    ])
    func passesServiceLinkNamesWithOtherValuesToLibrdkafka(name: String, value: String) throws {
        let (configuration, notices) = try PurgerConfiguration.loadWithNotices(environment: [name: value])
        let property = name.dropFirst(6).lowercased().replacingOccurrences(of: "_", with: ".")
        #expect(configuration.kafkaProperties == [property: value])
        #expect(notices.isEmpty)
        #expect(throws: ConfigurationError(setting: name, message: "librdkafka has no property \(property)")) {
            try configuration.checkKafkaProperties()
        }
    }

    @Test func takesASettingsOwnNameForTheSettingNotAServiceLink() {
        // A Service `purger-http` makes the kubelet set this.
        let refused = error(["PURGER_HTTP_PORT": "tcp://10.96.0.9:9464"])
        #expect(refused?.setting == "PURGER_HTTP_PORT")
        #expect(refused?.message.hasPrefix(#"must be an integer from 0 to 65535, got "tcp://10.96.0.9:9464""#) == true)
        #expect(refused?.message.contains("enableServiceLinks: false") == true)
        #expect(refused?.description.contains("\n") == false)
    }

    @Test func warnsAboutAMistypedSettingWithTheNearestName() throws {
        let (configuration, notices) = try PurgerConfiguration.loadWithNotices(environment: [
            "PURGER_BATCH_MAX_SIZ": "50", "DATOCMS_API_TOKN": secret, "purger_log_level": "debug",
            "PURGER_NONSENSE": "1", "PURGERS": "not ours", "HOME": "/root",
        ])
        #expect(configuration.batchMaxSize == 200)
        #expect(
            notices == [
                .unknownVariable("DATOCMS_API_TOKN", suggestion: "DATOCMS_API_TOKEN"),
                .unknownVariable("PURGER_BATCH_MAX_SIZ", suggestion: "PURGER_BATCH_MAX_SIZE"),
                .unknownVariable("PURGER_NONSENSE", suggestion: nil),
                .unknownVariable("purger_log_level", suggestion: "PURGER_LOG_LEVEL"),
            ])
        #expect(notices.allSatisfy { $0.level == .warning })
        #expect(
            notices[1].description == "PURGER_BATCH_MAX_SIZ is not a setting; did you mean PURGER_BATCH_MAX_SIZE?")
        #expect(notices[2].description == "PURGER_NONSENSE is not a setting; it is ignored")
        for notice in notices { #expect(!notice.description.contains(secret)) }
    }

    @Test func warnsAboutALowerCaseKafkaVariableThatReachesNothing() throws {
        let (configuration, notices) = try PurgerConfiguration.loadWithNotices(environment: ["kafka_acks": "all"])
        #expect(configuration.kafkaProperties.isEmpty)
        #expect(notices == [.unknownVariable("kafka_acks", suggestion: "KAFKA_ACKS")])
    }

    @Test func stillPassesRealLibrdkafkaPropertiesAndRefusesUnknownOnes() throws {
        var environment = Self.serviceLinks
        environment["KAFKA_SASL_MECHANISMS"] = "PLAIN"
        environment["KAFKA_NOT_A_PROPERTY"] = "x"
        let configuration = try load(environment)
        #expect(configuration.kafkaProperties == ["sasl.mechanisms": "PLAIN", "not.a.property": "x"])
        // `run` turns this error into its one line and exit code 2.
        #expect(
            throws: ConfigurationError(
                setting: "KAFKA_NOT_A_PROPERTY", message: "librdkafka has no property not.a.property")
        ) { try configuration.checkKafkaProperties() }
    }

    @Test func redactsPassphrasesAmongKafkaProperties() throws {
        let configuration = try load(["KAFKA_SASL_OAUTHBEARER_ASSERTION_PRIVATE_KEY_PASSPHRASE": "pp-value"])
        #expect(!configuration.description.contains("pp-value"))
    }
}
