/**
 * An upgrade that `ws` refuses once the upstream's handshake is done. The
 * gateway's own check (`browserHandshake`) is meant to refuse, before the
 * session's token goes anywhere, every upgrade `ws` would refuse; two it
 * let through. On a `compression: true` route, a malformed or unacceptable
 * `Sec-WebSocket-Extensions` (which `ws` parses only where it may
 * negotiate permessage-deflate), and a subprotocol list whose names end in
 * a no-break space (byte 0xA0: `String.prototype.trim` takes it off,
 * `ws`'s parser, which knows only spaces and tabs, refuses it). Each had
 * the upstream dialled with the user's token and a socket opened there,
 * then `ws` answered the browser a bare `400` outside the error catalogue
 * and tore the upstream's socket down.
 */
import { connect } from 'node:net'
import t from 'tap'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import { browserHeaders, openSocket, upgradeRequest, wsUpstream, wsUrl } from '../../helpers/websocket.js'

/** The answer's head to `bytes` written on a raw connection to the gateway at `port`. */
async function answerTo(port: number, bytes: Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  const head = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n\r\n')) resolve()
    })
    socket.on('error', reject)
    socket.on('close', () => resolve())
  })
  socket.write(bytes)
  await head
  socket.destroy()
  return answer
}

t.test('an upgrade ws would refuse is a 400 invalid_upgrade before the upstream is dialled', async (t) => {
  const upstream = await wsUpstream(t, { perMessageDeflate: true })
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: { compression: true } })],
  })
  const { jar } = await login(stack.gateway.url)
  const port = Number(new URL(stack.gateway.url).port)
  const refused: readonly (readonly [string, string])[] = [
    [
      'an unacceptable permessage-deflate offer',
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=99',
    ],
    ['a malformed extension list', 'Sec-WebSocket-Extensions: permessage-deflate;;'],
    [
      'a parameter given twice',
      'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    ],
    ['a subprotocol ending in a no-break space', 'Sec-WebSocket-Protocol: v1\u00a0, v2'],
  ]
  for (const [what, header] of refused) {
    const bytes = Buffer.from(upgradeRequest(stack, jar, '/live/feed', { headers: [header] }), 'latin1')
    const answer = await answerTo(port, bytes)
    t.match(answer, /^HTTP\/1\.1 400 /, `${what}: 400`)
    t.match(answer, /"error":"invalid_upgrade"/, `${what}: from the catalogue`)
  }
  t.equal(upstream.upgrades.length, 0, 'the upstream was never dialled with the user token')

  // What a browser offers opens, compressed, as before.
  const socket = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar), {
    perMessageDeflate: true,
  })
  t.teardown(() => socket.terminate())
  t.match(socket.extensions, /permessage-deflate/, 'a valid offer is negotiated')
  t.equal(upstream.upgrades.length, 1)
})
