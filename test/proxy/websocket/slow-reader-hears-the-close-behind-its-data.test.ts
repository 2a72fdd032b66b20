import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { CLOSE_GRACE } from '../../../src/proxy/websocket/closing.js'
import { makePki } from '../../helpers/certificates.js'
import { route } from '../../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'

const MiB = 1024 * 1024
/** One message, larger than the kernel's buffers between the gateway and a reader (a few MiB on loopback). */
const SIZE = 18 * MiB
/** What the reader reads at full speed, once no more than this is left before the close frame. */
const TAIL = 8 * MiB
/**
 * Between two reads of at most 64 KiB (one TCP read of Node's): about
 * 2 MiB/s, so the 10 MiB before TAIL take some 5 s, longer than two
 * graces (the most a reader that takes nothing is given), while the kernel
 * takes a part of what the gateway writes several times a grace.
 */
const PACE = 30 // ms
/** Longest the test waits for a close; ws's own close timer is 30 s. */
const BOUND = 30_000 // ms

/**
 * A signed-in browser's socket on a route to a real `ws` upstream that
 * takes messages of SIZE, over wss when `tls`, with each peer's own
 * connection, on which the test reads one read at a time.
 */
async function bridged(t: Test, tls: boolean) {
  const pki = tls ? makePki(t) : undefined
  const issued = pki?.issue('live')
  const server = issued ? createHttpsServer({ cert: issued.cert, key: issued.key }) : createHttpServer()
  const wss = new WebSocketServer({ server, maxPayload: 2 * SIZE })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const connected = once(wss, 'connection') as Promise<[WebSocket, IncomingMessage]>
  const upstreamUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`
  const stack = await startStack(t, {
    routes: () => [
      route('/live', upstreamUrl, {
        websocket: { maxMessage: 32 * MiB },
        ...(pki && { tls: { ca: { file: pki.ca.certFile } } }),
      }),
    ],
    gateway: { websocketRecheck: 100 },
  })
  t.teardown(async () => {
    await stack.close()
    for (const client of wss.clients) client.terminate()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { jar } = await login(stack.gateway.url)
  const browser = new WebSocket(`${stack.gateway.url.replace(/^http/, 'ws')}/live/feed`, {
    headers: { origin: stack.gateway.url, cookie: jar.header(`${stack.gateway.url}/live`) },
    maxPayload: 2 * SIZE,
  })
  t.teardown(() => browser.terminate())
  const [[response]] = await Promise.all([
    once(browser, 'upgrade') as Promise<[IncomingMessage]>,
    once(browser, 'open'),
  ])
  const [upstream, request] = await connected
  return {
    stack,
    jar,
    legs: { browser, upstream },
    connections: { browser: response.socket as Socket, upstream: request.socket as Socket },
  }
}

/**
 * Lets `socket` read once from `connection`, then pauses it again: the
 * bytes of that one read.
 */
function readOnce(socket: WebSocket, connection: Socket): Promise<number> {
  return new Promise((resolve) => {
    connection.once('data', (chunk: Buffer) => {
      socket.pause()
      resolve(chunk.length)
    })
    socket.resume()
  })
}

/**
 * A reader slow but steady: one read every `pace` ms until no more than
 * TAIL of `left` bytes remain, then the rest at full speed.
 */
function readSlowly(socket: WebSocket, connection: Socket, left: number, pace: number): void {
  const onData = (chunk: Buffer) => {
    left -= chunk.length
    if (left <= TAIL) {
      connection.off('data', onData)
      return
    }
    socket.pause()
    setTimeout(() => socket.resume(), pace)
  }
  connection.on('data', onData)
  socket.resume()
}

function ended(socket: WebSocket): Promise<{ code: number; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${BOUND} ms`)), BOUND)
    socket.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, at: performance.now() })
    })
  })
}

const hashOf = (data: Buffer) => createHash('sha256').update(data).digest('hex')

// The gateway gave a peer CLOSE_GRACE to answer its close frame from the
// moment it closed the leg (`ws`'s close timer), not from when the frame
// was written: a peer reading, only slowly, what was queued ahead of it
// was dropped (1006) before it could see the frame at all.
for (const { sender, reader, tls } of [
  { sender: 'browser', reader: 'upstream', tls: false },
  { sender: 'upstream', reader: 'browser', tls: false },
  // Node sees nothing of a TLS write until it completes: the close timer
  // alone bounds the wait (closing.ts).
  { sender: 'browser', reader: 'upstream', tls: true },
] as const) {
  t.test(
    `a session that ends while the ${reader} slowly reads more than a grace of data${tls ? ' over TLS' : ''} reaches it as 4401, not a drop`,
    async (t) => {
      const { stack, jar, legs, connections } = await bridged(t, tls)
      const message = randomBytes(SIZE)
      legs[reader].pause()
      let data: Buffer | undefined
      legs[reader].once('message', (received: Buffer) => {
        data = received
      })
      legs[sender].send(message, { binary: true })
      // `ws` relays a message once it has all of it: its first bytes at the
      // reader say the gateway holds the rest, queued for the reader.
      const first = await readOnce(legs[reader], connections[reader])
      const senderEnd = ended(legs[sender])
      const readerEnd = ended(legs[reader])
      const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{
        logoutUrl: string
      }>()
      t.equal((await jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)).status, 200)
      // The sender had nothing queued towards it: it answers at once. The
      // gateway has closed both legs by then.
      const { code: senderCode, at: closedAt } = await senderEnd
      t.equal(senderCode, 4401, `the ${sender} is told the session ended`)
      // A TLS read is one record of 16 KiB, a TCP read up to 64 KiB.
      readSlowly(legs[reader], connections[reader], SIZE - first, tls ? PACE / 4 : PACE)
      const { code, at } = await readerEnd
      t.equal(code, 4401, `the ${reader} hears the close frame behind its data, and answers it`)
      t.ok(
        at - closedAt > CLOSE_GRACE,
        `the close frame reached it ${Math.round(at - closedAt)} ms after the ${sender}'s close, more than a grace`,
      )
      t.equal(data && hashOf(data), hashOf(message), 'and the message ahead of it, whole')
    },
  )
}
