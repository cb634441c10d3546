#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// MARK: - Pushed job results

extension CMAClient {
    /// How long the first submission to an environment waits for its push channel before its job is polled.
    public static let pushSubscriptionTimeout: Duration = .seconds(5)

    /// Keeps the push connection (when ``CMAClientConfiguration/jobResults`` is not `.poll`) until cancelled;
    /// returns at once otherwise. Jobs awaited while it does not run are polled.
    public func runPushedResults() async {
        guard let push else { return }
        await push.run { socketID, channel throws(CMAError) in
            try await self.authorizePushChannel(socketID: socketID, channel: channel)
        }
    }

    /// Whether job results of `environment` (`nil`: the client's default) come by push: subscribes its channel,
    /// waiting at most ``pushSubscriptionTimeout`` the first time.
    /// - Throws: ``CMAError`` of kind `.fatal` when the API rejects the token.
    public func subscribePushChannel(environment: String?) async throws(CMAError) -> Bool {
        try await pushChannel(for: resolved(environment)) != nil
    }

    /// The subscribed push channel of an environment (already resolved), or `nil` when its jobs are polled.
    func pushChannel(for environment: String?) async throws(CMAError) -> String? {
        guard let push else { return nil }
        let site: String
        do {
            site = try await siteID()
        } catch  where error.kind != .fatal {
            logger.warning("Could not read the site's id; job results are polled", metadata: ["error": "\(error)"])
            return nil
        }
        let channel = Self.pushChannelName(site: site, environment: environment)
        return await push.subscribe(channel, timeout: Self.pushSubscriptionTimeout) ? channel : nil
    }

    /// DatoCMS's channel of a site's job results: `private-site-{id}`, or `private-site-{id}-environment-{name}`.
    public static func pushChannelName(site: String, environment: String?) -> String {
        environment.map { "private-site-\(site)-environment-\($0)" } ?? "private-site-\(site)"
    }

    /// The site's id (`GET /site`), read once.
    func siteID() async throws(CMAError) -> String {
        if let known = state.withLock({ $0.siteID }) { return known }
        let result = try await send(.GET, path: "/site", environment: nil, endpoint: .site, priority: .background)
        guard case .response(let response) = result,
            let document = try? JSONDecoder().decode(SiteDocument.self, from: Data(response.body))
        else {
            throw CMAError(kind: .retryable, message: "unreadable site document")
        }
        state.withLock { $0.siteID = document.data.id }
        return document.data.id
    }

    /// `POST /pusher/authenticate`: the signature that lets `socketID` subscribe to `channel`, as `key:signature`.
    func authorizePushChannel(socketID: String, channel: String) async throws(CMAError) -> String {
        struct Body: Encodable {
            var socket_id: String
            var channel_name: String
        }
        struct Answer: Decodable { var auth: String }
        let body = Array((try? JSONEncoder().encode(Body(socket_id: socketID, channel_name: channel))) ?? Data())
        let result = try await send(
            .POST, path: "/pusher/authenticate", body: body, contentType: "application/json", environment: nil,
            endpoint: .pusherAuthenticate, priority: .background)
        guard case .response(let response) = result,
            let answer = try? JSONDecoder().decode(Answer.self, from: Data(response.body)), !answer.auth.isEmpty
        else {
            throw CMAError(kind: .rejected, message: "unreadable push authorization")
        }
        return answer.auth
    }
}

/// `GET /site`: only the id matters.
struct SiteDocument: Decodable {
    struct Site: Decodable { var id: String }
    var data: Site
}
