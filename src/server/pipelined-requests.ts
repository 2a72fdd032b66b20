import { AsyncResource } from 'node:async_hooks'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'

/**
 * Node's own count of a connection's unsent answer bytes, on each response
 * (`_http_server.js`): past the socket's high-water mark it stops reading
 * the connection (socket and parser), and reads again once they drain.
 */
type Counted = ServerResponse & { _onPendingData?: (delta: number) => void }

/**
 * Serves the requests of one connection one at a time, in order, as nginx
 * and Envoy do. RFC 9112 §9.3.2 lets a client pipeline requests, and Node
 * parses and hands over each as it arrives, while the answers before it
 * are still being made: it stops reading a connection only once unsent
 * answers pile up, and a slow upstream's make none. So one connection that
 * wrote requests without waiting had every one of them routed, guarded and
 * sent upstream at once, queued in the route's pool: 2.7 MB of
 * `GET /x HTTP/1.1` took 245 MiB of heap within 3 s, and more with every
 * write, until the process ran out.
 *
 * A request behind an answer still in the making now waits, unrouted,
 * until Node gives it the connection (its answers leave in order whatever
 * happens), and counts meanwhile as a full socket buffer of unsent answer
 * in Node's own count, so Node stops reading the connection, as for a
 * client that does not read its answers, until the last request waiting
 * has its turn: what waits is at most what one read held (64 KiB of
 * requests). Browsers and proxies do not pipeline, and are served as before.
 */
export function inTurn(handler: RequestListener): RequestListener {
  return function servedInTurn(request: IncomingMessage, response: ServerResponse) {
    // Node gives a response its socket at once when no answer is ahead of
    // it on the connection, else when the one ahead has finished.
    if (response.socket !== null) {
      handler(request, response)
      return
    }
    const counted = response as Counted
    const held = request.socket.writableHighWaterMark + 1
    counted._onPendingData?.(held)
    let waiting = true
    const release = () => {
      if (!waiting) return
      waiting = false
      counted._onPendingData?.(-held)
    }
    // Its turn comes inside the finish of the answer ahead, in that
    // request's async context: the request is served in the context it
    // arrived in, so its trace and log lines are its own.
    response.once(
      'socket',
      AsyncResource.bind(() => {
        release()
        handler(request, response)
      }),
    )
    // The connection closed first: Node destroys the answers still queued.
    response.once('close', release)
  }
}
