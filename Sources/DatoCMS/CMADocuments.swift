#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// MARK: - Request bodies

/// `POST /uploads/bulk/destroy` body.
struct BulkDestroyDocument: Encodable {
    struct Reference: Encodable {
        var type = "upload"
        var id: String
    }
    struct Uploads: Encodable { var data: [Reference] }
    struct Relationships: Encodable { var uploads: Uploads }
    struct Operation: Encodable {
        var type = "upload_bulk_destroy_operation"
        var relationships: Relationships
    }
    var data: Operation

    init(_ ids: [UploadID]) {
        data = Operation(relationships: Relationships(uploads: Uploads(data: ids.map { Reference(id: $0.rawValue) })))
    }
}

// MARK: - Response bodies

/// `{"data":{"type":"job","id":"4235"}}`.
struct JobDocument: Decodable {
    struct Job: Decodable {
        var type: String
        var id: String
    }
    var data: Job
}

/// `GET /job-results/:id` when the job finished.
struct JobResultDocument: Decodable {
    struct Meta: Decodable {
        var successful: Int?
        var failed: Int?
    }
    struct Payload: Decodable {
        var data: [APIErrorDocument.Entry]?
        var meta: Meta?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // A successful payload's `data` is not an error list; only a failed one's is.
            data = try? container.decodeIfPresent([APIErrorDocument.Entry].self, forKey: .data)
            meta = try? container.decodeIfPresent(Meta.self, forKey: .meta)
        }

        enum CodingKeys: String, CodingKey { case data, meta }
    }
    struct Attributes: Decodable {
        var status: Int
        var payload: Payload?
    }
    struct Result: Decodable {
        var id: String?
        var attributes: Attributes
    }
    var data: Result
}

/// `GET /uploads` collection: only ids matter.
struct UploadCollectionDocument: Decodable {
    struct Upload: Decodable { var id: String }
    struct Meta: Decodable {
        var totalCount: Int?
        enum CodingKeys: String, CodingKey { case totalCount = "total_count" }
    }
    var data: [Upload]
    var meta: Meta?
}

/// `{"data":[{"id":"…","type":"api_error","attributes":{"code":"…","details":{…},"transient":true}}]}`.
struct APIErrorDocument: Decodable {
    struct Attributes: Decodable {
        var code: String
        var details: JSONValue?
        var transient: Bool?
    }
    struct Entry: Decodable {
        var id: String?
        var type: String?
        var attributes: Attributes
    }
    var data: [Entry]

    /// The first error's code.
    var code: String? { data.first?.attributes.code }
    /// Whether any error says to retry later.
    var isTransient: Bool { data.contains { $0.attributes.transient == true } }
    /// `CODE: {details}` for every error, joined by `; `.
    var summary: String {
        data.map { entry in
            if let details = entry.attributes.details, details != .object([:]) {
                return "\(entry.attributes.code): \(details.compactText)"
            }
            return entry.attributes.code
        }.joined(separator: "; ")
    }

    static func decode(_ bytes: [UInt8]) -> APIErrorDocument? {
        try? JSONDecoder().decode(APIErrorDocument.self, from: Data(bytes))
    }
}

/// Any JSON value, for error `details` whose shape varies by code.
indirect enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Compact, key-sorted JSON-like text for log lines and event `error` fields.
    var compactText: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .number(let value):
            value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .string(let value): "\"\(value)\""
        case .array(let values): "[" + values.map(\.compactText).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.keys.sorted().map { "\"\($0)\":\(members[$0]!.compactText)" }.joined(separator: ",") + "}"
        }
    }
}

extension FinishedJob {
    /// A job result from its status and payload, as `GET /job-results/:id` and the pushed `job-result` event
    /// carry them alike.
    init(status: Int, payload: JobResultDocument.Payload?) {
        let errors = payload?.data ?? []
        self.init(
            status: status, successful: payload?.meta?.successful, failed: payload?.meta?.failed,
            error: (200..<300).contains(status)
                ? nil : (errors.isEmpty ? "HTTP \(status)" : APIErrorDocument(data: errors).summary))
    }
}
