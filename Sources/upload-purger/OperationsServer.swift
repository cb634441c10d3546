import Hummingbird
import Logging
import Prometheus
import Purger

/// The operations surface on `PURGER_HTTP_PORT`: Prometheus metrics, liveness and readiness.
enum OperationsServer {
    /// `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the consume loop is alive),
    /// `GET /readyz` (200 once partitions are assigned and the API has answered; 503 otherwise).
    static func make(
        port: Int, registry: PrometheusCollectorRegistry, worker: PurgeWorker, logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("healthz") { _, _ in
            worker.isAlive
                ? Response(status: .ok, body: text("alive\n"))
                : Response(status: .serviceUnavailable, body: text("stopped\n"))
        }
        router.get("readyz") { _, _ in
            worker.isReady
                ? Response(status: .ok, body: text("ready\n"))
                : Response(status: .serviceUnavailable, body: text("not ready\n"))
        }
        return Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("0.0.0.0", port: port)),
            logger: logger)
    }

    private static func text(_ string: String) -> ResponseBody {
        ResponseBody(byteBuffer: ByteBuffer(string: string))
    }
}
