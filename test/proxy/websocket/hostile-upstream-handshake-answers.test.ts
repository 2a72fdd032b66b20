/**
 * A hostile upstream's handshake answers, at the byte level, as no `ws`
 * server would send them: a `101` that sets the gateway's session cookie,
 * one with a `Sec-WebSocket-Accept` for another key, one that turns on an
 * extension nobody offered, and one whose close frame has a frame behind
 * it. The browser's `101` is the gateway's own, so nothing of the
 * upstream's reaches it but its subprotocol; the others fail the
 * upstream's handshake (502) before the browser is answered.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import { BOUND, browserHeaders, closed, openSocket, type Refused, wsUrl } from '../../helpers/websocket.js'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** A server frame (unmasked, RFC 6455 §5.2) with `opcode` and `payload`, under 126 bytes. */
const frame = (opcode: number, payload: Buffer) =>
  Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload])

/** What the upstream answers each path with, given the accept value the request's key calls for. */
const ANSWERS: Record<string, (accept: string) => readonly string[]> = {
  '/set-cookie': (accept) => [
    `Sec-WebSocket-Accept: ${accept}`,
    'Set-Cookie: gatehouse=planted; Path=/',
    'Set-Cookie: __Host-Http-gatehouse=planted; Path=/; Secure',
  ],
  '/wrong-accept': () => [`Sec-WebSocket-Accept: ${createHash('sha1').update(GUID).digest('base64')}`],
  '/unoffered-extension': (accept) => [
    `Sec-WebSocket-Accept: ${accept}`,
    'Sec-WebSocket-Extensions: permessage-deflate',
  ],
  '/frames-after-close': (accept) => [`Sec-WebSocket-Accept: ${accept}`],
}

async function hostileUpstream(t: Test) {
  const sockets: Socket[] = []
  const server = createServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\r\n\r\n')) return
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      const path = /^GET \/[^/ ]+(\/[^ ]*) /.exec(head)?.[1] ?? ''
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!
      const accept = createHash('sha1').update(`${key}${GUID}`).digest('base64')
      const lines = ANSWERS[path]!(accept)
      socket.write(
        [
          'HTTP/1.1 101 Switching Protocols',
          'Upgrade: websocket',
          'Connection: Upgrade',
          ...lines,
          '',
          '',
        ].join('\r\n'),
      )
      if (path === '/frames-after-close') {
        const close = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])
        socket.write(Buffer.concat([frame(0x8, close), frame(0x1, Buffer.from('after the close'))]))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test("a hostile upstream's handshake answer never reaches the browser but its subprotocol", async (t) => {
  const upstream = await hostileUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream, { websocket: true })],
  })
  const { jar } = await login(stack.gateway.url)

  // The browser's 101 is the gateway's: no Set-Cookie of the upstream's.
  const browser = new WebSocket(wsUrl(stack, '/live/set-cookie'), {
    headers: browserHeaders(stack, jar),
    handshakeTimeout: BOUND,
  })
  t.teardown(() => browser.terminate())
  browser.on('error', () => {})
  const [response] = (await new Promise((resolve, reject) => {
    browser.once('upgrade', (...args) => resolve(args))
    browser.once('error', reject)
  })) as [IncomingMessage]
  t.equal(response.headers['set-cookie'], undefined, 'no cookie the upstream set reaches the browser')

  for (const path of ['/wrong-accept', '/unoffered-extension']) {
    const refused = (await openSocket(wsUrl(stack, `/live${path}`), browserHeaders(stack, jar)).then(
      () => undefined,
      (err: Refused) => err,
    )) as Refused | undefined
    t.equal(refused?.status, 502, `${path}: the browser's upgrade fails with a 502`)
    t.match(JSON.parse(refused?.body ?? '{}'), { error: /^upstream_/ }, `${path}: from the catalogue`)
  }

  // What an upstream sends after its close frame is not relayed.
  const late = await openSocket(wsUrl(stack, '/live/frames-after-close'), browserHeaders(stack, jar))
  t.teardown(() => late.terminate())
  const messages: string[] = []
  late.on('message', (data) => messages.push(String(data)))
  t.same(await closed(late), { code: 1000, reason: 'bye' }, "the upstream's close reaches the browser")
  t.same(messages, [], 'the frame behind the close does not')
})
