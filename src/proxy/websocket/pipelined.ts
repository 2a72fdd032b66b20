import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** Node's own record of the answer that holds a connection's socket (`_http_server.js`); no public API says it. */
interface HeldSocket {
  _httpMessage?: ServerResponse | null
}

/**
 * An upgrade pipelined behind a request still being answered on the same
 * connection (RFC 9112 §9.3.2) cannot take the socket: Node hands it over
 * with the earlier answer still holding it, and giving it to another
 * answer throws ERR_HTTP_SOCKET_ASSIGNED out of the 'upgrade' event, which
 * once ended the process. Such an upgrade is not served: the connection
 * closes once the answers ahead of it are written, and the client sends
 * it again on a new connection, as it must any request a closed
 * connection left unanswered. True when the upgrade was so refused.
 */
export function refusedBehindAnAnswer(socket: Duplex): boolean {
  if (!(socket as HeldSocket)._httpMessage) return false
  socket.on('error', () => socket.destroy())
  closeWhenAnswered(socket)
  return true
}

function closeWhenAnswered(socket: Duplex): void {
  const ahead = (socket as HeldSocket)._httpMessage
  if (!ahead) {
    socket.end()
    return
  }
  // Node's own 'finish' listener runs first and hands the socket to the
  // next pipelined answer, if any: that one is waited for in turn.
  ahead.once('finish', () => closeWhenAnswered(socket))
  ahead.once('close', () => {
    if (!ahead.writableFinished) socket.destroy()
  })
}
