import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Instantiates, once per process and on the calling thread, the generic SwiftNIO types that HTTP and websocket
/// connections set up on event-loop threads.
///
/// Why: Swift 6.3.1's runtime on Linux can crash (a null metadata pointer in `swift_checkMetadataState`, reached
/// from `swift_conformsToProtocol` while a generic type's requirements are checked) when two threads instantiate
/// such types for the first time at the same moment. It took down one `upload-purger run` process as its push
/// connection and its first API request set up their pipelines together. A program of 20 lines that does only that
/// (eight event loops instantiating `ByteToMessageHandler<HTTPResponseDecoder>` and its neighbours at once)
/// crashed in 12 of about 2,200 runs with the same stack; with the types instantiated first on the main thread, in 0
/// of 3,000. Metadata, once complete, is cached for the process, so later connections only read it.
///
/// Call it before connections start (``CMAClient`` does in its initializer; `upload-purger run` at start-up, before
/// its servers); `swift_once` makes concurrent first calls wait for the one that runs.
public enum NIOTypeMetadata {
    /// Instantiates the types (once; later calls return at once).
    public static func instantiate() {
        _ = instantiated
    }

    private static let instantiated: Int = {
        // Client: AsyncHTTPClient's HTTP/1 pipeline and the websocket client's upgrade pipeline.
        // Server: the operations server's and the simulator's HTTP/1 pipelines.
        // Websocket frames, both ways.
        let types: [Any.Type] = [
            [any RemovableChannelHandler].self,
            HTTPRequestEncoder.self,
            ByteToMessageHandler<HTTPResponseDecoder>.self,
            NIOHTTPRequestHeadersValidator.self,
            HTTPClientRequestPart.self,
            HTTPClientResponsePart.self,
            HTTPResponseEncoder.self,
            ByteToMessageHandler<HTTPRequestDecoder>.self,
            HTTPServerPipelineHandler.self,
            HTTPServerProtocolErrorHandler.self,
            HTTPServerRequestPart.self,
            HTTPServerResponsePart.self,
            WebSocketFrameEncoder.self,
            ByteToMessageHandler<WebSocketFrameDecoder>.self,
            WebSocketProtocolErrorHandler.self,
            NIOAsyncChannel<WebSocketFrame, WebSocketFrame>.self,
            NIOAsyncChannel<ByteBuffer, ByteBuffer>.self,
        ]
        return types.map { ObjectIdentifier($0).hashValue }.count
    }()
}
