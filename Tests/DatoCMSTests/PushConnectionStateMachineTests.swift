import DatoCMS
import Testing

/// The Pusher protocol machine, without sockets: every input a connection can see, on a virtual clock.
@Suite struct PushConnectionStateMachineTests {
    let start = ContinuousClock.now
    let channel = "private-site-31337"

    func established(socketID: String = "123.456", activityTimeout: Int = 120) -> String {
        #"{"event":"pusher:connection_established","data":"{\"socket_id\":\"\#(socketID)\",\"activity_timeout\":\#(activityTimeout)}"}"#
    }

    func succeeded(_ channel: String) -> String {
        #"{"event":"pusher_internal:subscription_succeeded","channel":"\#(channel)","data":"{}"}"#
    }

    func jobResult(_ channel: String, job: String, status: Int = 200, successful: Int = 3, failed: Int = 1) -> String {
        let payload = #"{\"data\":[],\"meta\":{\"successful\":\#(successful),\"failed\":\#(failed)}}"#
        return
            #"{"event":"job-result","channel":"\#(channel)","data":"{\"jobId\":\"\#(job)\",\"status\":\#(status),\"payload\":\#(payload)}"}"#
    }

    /// A machine connected and subscribed to `channel`.
    func subscribed(_ channel: String, socketID: String = "123.456") -> PushConnectionStateMachine {
        var machine = PushConnectionStateMachine(now: start)
        _ = machine.want(channel, at: start)
        #expect(machine.tick(at: start) == [.connect])
        #expect(
            machine.received(established(socketID: socketID), at: start)
                == [.authorize(socketID: socketID, channel: channel)])
        let actions = machine.authorized(channel: channel, auth: "key:sig", socketID: socketID, at: start)
        #expect(actions.count == 1)
        #expect(machine.received(succeeded(channel), at: start) == [.subscribed(channel)])
        return machine
    }

    @Test func subscribesEveryWantedChannelOnceConnected() {
        var machine = PushConnectionStateMachine(now: start)
        #expect(machine.want(channel, at: start) == [])
        #expect(machine.want("\(channel)-environment-staging", at: start) == [])
        #expect(machine.tick(at: start) == [.connect])
        #expect(machine.tick(at: start + .seconds(1)) == [])
        let actions = machine.received(established(), at: start)
        #expect(
            actions == [
                .authorize(socketID: "123.456", channel: channel),
                .authorize(socketID: "123.456", channel: "\(channel)-environment-staging"),
            ])
        let subscribe = machine.authorized(channel: channel, auth: "k:abc", socketID: "123.456", at: start)
        #expect(
            subscribe == [
                .send(#"{"data":{"auth":"k:abc","channel":"private-site-31337"},"event":"pusher:subscribe"}"#)
            ])
        #expect(!machine.isSubscribed(channel))
        #expect(machine.received(succeeded(channel), at: start) == [.subscribed(channel)])
        #expect(machine.isSubscribed(channel))
        // A channel wanted once connected is authorized at once.
        #expect(
            machine.want("\(channel)-environment-dev", at: start)
                == [.authorize(socketID: "123.456", channel: "\(channel)-environment-dev")])
    }

    @Test func deliversJobResultsOfSubscribedChannelsOnly() {
        var machine = subscribed(channel)
        let delivered = machine.received(jobResult(channel, job: "4235"), at: start)
        #expect(
            delivered == [
                .deliver(.finished(JobID("4235"), FinishedJob(status: 200, successful: 3, failed: 1, error: nil)))
            ])
        #expect(machine.received(jobResult("private-site-other", job: "4236"), at: start) == [])
        let tooLarge = #"{"event":"job-result","channel":"\#(channel)","data":"{\"jobId\":\"4237\",\"status\":413}"}"#
        #expect(machine.received(tooLarge, at: start) == [.deliver(.tooLarge(JobID("4237")))])
        let failed =
            #"{"event":"job-result","channel":"\#(channel)","data":"{\"jobId\":4238,\"status\":500,\"payload\":{\"data\":[{\"id\":\"e\",\"type\":\"api_error\",\"attributes\":{\"code\":\"INTERNAL_SERVER_ERROR\",\"details\":{}}}]}}"}"#
        #expect(
            machine.received(failed, at: start)
                == [
                    .deliver(
                        .finished(
                            JobID("4238"),
                            FinishedJob(status: 500, successful: nil, failed: nil, error: "INTERNAL_SERVER_ERROR")))
                ])
        #expect(machine.received("not json", at: start) == [])
        #expect(machine.received(#"{"event":"job-result","channel":"\#(channel)","data":"{}"}"#, at: start) == [])
    }

    @Test func pingsAfterSilenceAndReconnectsWhenNoPongComes() {
        var machine = PushConnectionStateMachine(now: start)
        _ = machine.want(channel, at: start)
        _ = machine.tick(at: start)
        _ = machine.received(established(activityTimeout: 10), at: start)
        #expect(machine.nextDeadline == start + .seconds(10))
        #expect(machine.tick(at: start + .seconds(9)) == [])
        #expect(machine.tick(at: start + .seconds(10)) == [.send(#"{"data":{},"event":"pusher:ping"}"#)])
        // Any message counts as activity.
        #expect(machine.received(#"{"event":"pusher:pong","data":"{}"}"#, at: start + .seconds(11)) == [])
        #expect(machine.tick(at: start + .seconds(20)) == [])
        #expect(machine.tick(at: start + .seconds(21)).count == 1)
        #expect(machine.tick(at: start + .seconds(50)) == [])
        #expect(machine.tick(at: start + .seconds(51)) == [.close])
        _ = machine.closed(code: nil, at: start + .seconds(51))
        #expect(machine.tick(at: start + .seconds(52)) == [.connect])
    }

    @Test func answersTheServersPing() {
        var machine = subscribed(channel)
        #expect(
            machine.received(#"{"event":"pusher:ping","data":"{}"}"#, at: start)
                == [.send(#"{"data":{},"event":"pusher:pong"}"#)])
    }

    @Test func closeCodesDecideWhetherAndWhenToReconnect() {
        // 4200–4299: at once.
        var machine = subscribed(channel)
        let lost = machine.closed(code: 4200, at: start)
        #expect(lost == [.channelsLost(reason: "connection closed with code 4200")])
        #expect(!machine.isSubscribed(channel))
        #expect(machine.tick(at: start) == [.connect])
        // A new socket id: every channel is authorized again.
        #expect(
            machine.received(established(socketID: "9.9"), at: start)
                == [.authorize(socketID: "9.9", channel: channel)])
        #expect(machine.connections == 2)

        // 4100–4199 and anything else: after a back-off that doubles per failed attempt.
        var backingOff = subscribed(channel)
        _ = backingOff.closed(code: 4100, at: start)
        #expect(backingOff.tick(at: start + .milliseconds(999)) == [])
        #expect(backingOff.tick(at: start + .seconds(1)) == [.connect])
        _ = backingOff.closed(code: nil, at: start + .seconds(1))
        #expect(backingOff.tick(at: start + .milliseconds(2999)) == [])
        #expect(backingOff.tick(at: start + .seconds(3)) == [.connect])
        _ = backingOff.closed(code: nil, at: start + .seconds(3))
        #expect(backingOff.nextDeadline == start + .seconds(7))
        // A subscription that succeeds resets the back-off.
        _ = backingOff.tick(at: start + .seconds(7))
        _ = backingOff.received(established(socketID: "1.2"), at: start + .seconds(7))
        _ = backingOff.authorized(channel: channel, auth: "a", socketID: "1.2", at: start + .seconds(7))
        _ = backingOff.received(succeeded(channel), at: start + .seconds(7))
        _ = backingOff.closed(code: 1006, at: start + .seconds(8))
        #expect(backingOff.nextDeadline == start + .seconds(9))

        // 4000–4099: never; every channel is refused from then on.
        var refused = subscribed(channel)
        let actions = refused.closed(code: 4001, at: start)
        #expect(actions.count == 2)
        #expect(
            actions.last
                == .giveUp(reason: "the push server refused the connection (code 4001); job results are polled"))
        #expect(refused.hasGivenUp)
        #expect(refused.nextDeadline == nil)
        #expect(refused.tick(at: start + .seconds(3600)) == [])
        #expect(refused.want("other", at: start).count == 1)
    }

    @Test func anAnnouncedErrorCodeDecidesTheCloseThatFollows() {
        var machine = subscribed(channel)
        #expect(
            machine.received(#"{"event":"pusher:error","data":{"code":4004,"message":"Over limit"}}"#, at: start)
                == [.close])
        let actions = machine.closed(code: 1000, at: start)
        #expect(
            actions.contains(
                .giveUp(reason: "the push server refused the connection (code 4004); job results are polled")))

        var later = subscribed(channel)
        #expect(
            later.received(
                #"{"event":"pusher:error","data":{"code":4201,"message":"Pong reply not received"}}"#, at: start) == [])
        _ = later.closed(code: nil, at: start)
        #expect(later.tick(at: start) == [.connect])
    }

    @Test func refusedAuthorizationOrSubscriptionRefusesTheChannelOnly() {
        var machine = PushConnectionStateMachine(now: start)
        _ = machine.want(channel, at: start)
        _ = machine.want("\(channel)-environment-staging", at: start)
        _ = machine.tick(at: start)
        _ = machine.received(established(), at: start)
        #expect(
            machine.authorizationFailed(channel: channel, reason: "403", at: start)
                == [.channelRefused(channel, reason: "authorization refused: 403")])
        _ = machine.authorized(
            channel: "\(channel)-environment-staging", auth: "bad", socketID: "123.456", at: start)
        let error =
            #"{"event":"pusher:subscription_error","channel":"\#(channel)-environment-staging","data":"{\"type\":\"AuthError\",\"status\":401}"}"#
        let refusal = machine.received(error, at: start)
        #expect(refusal.count == 1)
        if case .channelRefused(let refused, _)? = refusal.first {
            #expect(refused == "\(channel)-environment-staging")
        } else {
            Issue.record("expected a refusal, got \(refusal)")
        }
        #expect(machine.isConnected)
        #expect(machine.channels[channel] == .refused("authorization refused: 403"))
    }

    @Test func anAuthorizationForAnEarlierSocketIsNotUsed() {
        var machine = PushConnectionStateMachine(now: start)
        _ = machine.want(channel, at: start)
        _ = machine.tick(at: start)
        _ = machine.received(established(socketID: "1.1"), at: start)
        _ = machine.closed(code: 4200, at: start)
        _ = machine.tick(at: start)
        _ = machine.received(established(socketID: "2.2"), at: start)
        #expect(machine.authorized(channel: channel, auth: "old", socketID: "1.1", at: start) == [])
        #expect(machine.authorized(channel: channel, auth: "new", socketID: "2.2", at: start).count == 1)
    }

    @Test func aConnectionThatIsNeverEstablishedTimesOut() {
        var machine = PushConnectionStateMachine(now: start)
        _ = machine.want(channel, at: start)
        #expect(machine.tick(at: start) == [.connect])
        #expect(machine.tick(at: start + .seconds(9)) == [])
        #expect(machine.tick(at: start + .seconds(10)) == [.close])
        // Nothing was subscribed, so nothing is lost; a reconnection follows.
        #expect(machine.closed(code: nil, at: start + .seconds(10)) == [])
        #expect(machine.tick(at: start + .seconds(11)) == [.connect])
    }

    @Test func anActivityTimeoutAboveTheClientsCapIsCapped() {
        var machine = PushConnectionStateMachine(now: start)
        _ = machine.tick(at: start)
        _ = machine.received(established(activityTimeout: 3600), at: start)
        #expect(machine.nextDeadline == start + .seconds(120))
    }
}
