import { connect } from 'node:net'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { startReloadable } from '../helpers/reloadable.js'
import { startStack } from '../helpers/stack.js'

/**
 * RFC 9112 §9.3.2 lets a client pipeline requests. A WebSocket upgrade
 * sent in the same write as a request the gateway is still answering
 * reached the 'upgrade' event while that answer held the socket, and
 * handing the socket to the upgrade's answer threw ERR_HTTP_SOCKET_ASSIGNED
 * out of the event: one unauthenticated connection ended the process,
 * with WebSocket routes or without.
 */
function pipelined(url: string, path: string): Promise<{ readonly received: string }> {
  const { port } = new URL(url)
  const upgrade = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    `Origin: ${url}`,
    '',
    '',
  ].join('\r\n')
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n${upgrade}`),
    )
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    socket.on('error', reject)
    // The connection must end by itself: the test times out otherwise.
    socket.on('close', () => resolve({ received }))
  })
}

t.test(
  "the CLI's listener, no WebSocket route: the first answer is sent, the connection closes, the process lives",
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [route('/api', upstream)])
    const { received } = await pipelined(stack.url, '/api/x')
    t.match(received, /^HTTP\/1\.1 200 /, 'the request ahead is answered')
    t.notMatch(received, /101 Switching Protocols/, 'the upgrade behind it is not served')
    t.equal((await fetch(`${stack.url}/healthz`)).status, 200, 'and the gateway still serves')
  },
)

t.test('a gateway with a WebSocket route: the same', async (t) => {
  const stack = await startStack(t, {
    routes: (upstream) => [route('/ws', upstream, { websocket: true, token: 'none' })],
  })
  const { received } = await pipelined(stack.gateway.url, '/ws')
  t.match(received, /^HTTP\/1\.1 200 /, 'the request ahead is answered')
  t.notMatch(received, /101 Switching Protocols/, 'the upgrade behind it is not served')
  t.equal((await fetch(`${stack.gateway.url}/healthz`)).status, 200, 'and the gateway still serves')
})
