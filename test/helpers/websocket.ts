import { once } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import type { Test } from 'tap'
import { type ClientOptions, type ServerOptions, WebSocket, WebSocketServer } from 'ws'
import type { CookieJar } from './cookie-jar.js'
import { route } from './gateway.js'
import { login } from './login.js'
import { type Stack, startStack } from './stack.js'

/** Longest any handshake or close may take in a WebSocket test before it fails. */
export const BOUND = 5_000 // ms

const MiB = 1024 * 1024

export interface WsUpstream {
  readonly url: string
  /** The headers of every upgrade the upstream accepted, in order. */
  readonly upgrades: IncomingHttpHeaders[]
  /** The upstream's end of the next socket it accepts (or of one it has accepted and not yet handed out). */
  next(): Promise<WebSocket>
}

/**
 * A real `ws` upstream that echoes every message back, closed at the end
 * of `t` (after the stack, which a test starts later, so its sockets go
 * first). `options` are `ws`'s own: `autoPong: false` makes a peer that
 * never answers a ping, `perMessageDeflate: true` one that would compress.
 */
export async function wsUpstream(t: Test, options: ServerOptions = {}): Promise<WsUpstream> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  const upgrades: IncomingHttpHeaders[] = []
  const accepted: WebSocket[] = []
  const waiting: ((socket: WebSocket) => void)[] = []
  wss.on('connection', (socket, request) => {
    upgrades.push(request.headers)
    socket.on('message', (data, binary) => socket.send(data as Buffer, { binary }))
    socket.on('error', () => {})
    const waiter = waiting.shift()
    if (waiter) waiter(socket)
    else accepted.push(socket)
  })
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    upgrades,
    next() {
      const socket = accepted.shift()
      return socket ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve))
    },
  }
}

/** A refused upgrade, as the client saw it. */
export interface Refused {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** Opens a socket through the gateway and resolves once open; rejects with the HTTP answer when refused. */
export function openSocket(url: string, headers: Record<string, string>, options: ClientOptions = {}) {
  return new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url, { headers, handshakeTimeout: BOUND, ...options })
    socket.once('open', () => resolve(socket))
    socket.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk
      })
      res.on('end', () =>
        reject({ status: res.statusCode ?? 0, headers: res.headers, body } satisfies Refused),
      )
    })
    socket.once('error', reject)
  })
}

/** The socket's close, or a rejection once BOUND passes without one. */
export function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    if (socket.readyState === WebSocket.CLOSED) reject(new Error('already closed'))
    const timer = setTimeout(() => reject(new Error(`not closed within ${BOUND} ms`)), BOUND)
    socket.once('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ code, reason: String(reason) })
    })
  })
}

/** The next message on `socket`, or a rejection once BOUND passes without one. */
export function nextMessage(socket: WebSocket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message within ${BOUND} ms`)), BOUND)
    socket.once('message', (data: Buffer) => {
      clearTimeout(timer)
      resolve(data)
    })
  })
}

/** What a browser sends on an upgrade to the gateway: its cookies, if signed in, and the page's Origin. */
export function browserHeaders(stack: Stack, jar?: CookieJar): Record<string, string> {
  const cookie = jar?.header(`${stack.gateway.url}/`)
  return { origin: stack.gateway.url, ...(cookie ? { cookie } : {}) }
}

export const wsUrl = (stack: Stack, path: string) => `${stack.gateway.url.replace(/^http/, 'ws')}${path}`

/** Polls `condition` every 10 ms until it holds or BOUND passes; for state with no event to wait on. */
export async function until(condition: () => boolean | Promise<boolean>): Promise<boolean> {
  for (const end = Date.now() + BOUND; !(await condition()) && Date.now() < end; )
    await new Promise((resolve) => setTimeout(resolve, 10))
  return condition()
}

/** One sample of a gateway's metrics, as Prometheus text. */
export function metrics(stack: Stack): Promise<string> {
  return stack.gateway.app.gatehouse.metrics.registry.metrics()
}

/** What `rawUpgrade` writes beyond a signed-in browser's well-formed upgrade. */
export interface RawUpgradeOptions {
  /** The request line's HTTP version; default `1.1`. */
  readonly version?: string
  /** Header lines added after the handshake's own. */
  readonly headers?: readonly string[]
  /** Bytes after the head. */
  readonly body?: string
}

/** The bytes of a signed-in browser's upgrade to `path` on the gateway of `stack`, with `options`. */
export function upgradeRequest(stack: Stack, jar: CookieJar, path: string, options: RawUpgradeOptions = {}) {
  const { port } = new URL(stack.gateway.url)
  return [
    `GET ${path} HTTP/${options.version ?? '1.1'}`,
    `Host: 127.0.0.1:${port}`,
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}`,
    `Origin: ${stack.gateway.url}`,
    `Cookie: ${jar.header(`${stack.gateway.url}/`)}`,
    ...(options.headers ?? []),
    '',
    options.body ?? '',
  ].join('\r\n')
}

/**
 * Writes a signed-in browser's upgrade to `path` on a raw socket, with what
 * `ws` and browsers never send (`options`). Resolves to the answer's head;
 * the socket is then destroyed.
 */
export async function rawUpgrade(
  stack: Stack,
  jar: CookieJar,
  path: string,
  options: RawUpgradeOptions = {},
) {
  const { port } = new URL(stack.gateway.url)
  const socket = connect(Number(port), '127.0.0.1')
  let answer = ''
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString('latin1')
    if (answer.includes('\r\n\r\n')) socket.emit('head')
  })
  socket.write(upgradeRequest(stack, jar, path, options))
  await once(socket, 'head')
  socket.destroy()
  return answer
}

/**
 * A stack with two WebSocket routes to one `wsUpstream`, `/live` (the
 * user's token) and `/service` (a client token), and a browser signed in;
 * `tokenRequests` is the IdP's count once it is, to tell whether a refused
 * upgrade fetched a token.
 */
export async function signedInToWebSocketRoutes(t: Test) {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: () => [
      route('/live', upstream.url, { websocket: true }),
      route('/service', upstream.url, { token: 'client', scopes: ['reports.read'], websocket: true }),
    ],
  })
  const { jar } = await login(stack.gateway.url)
  return { upstream, stack, jar, tokenRequests: stack.idp.stats.tokenRequests }
}

/**
 * A browser's socket at `url` that stops reading while the gateway holds
 * most of a `size`-byte message from the upstream for it, more than the
 * kernel's buffers take; with `upstream`'s end of the socket.
 */
export async function stalledBehind(
  t: Test,
  upstream: WsUpstream,
  url: string,
  headers: Record<string, string>,
  size: number,
): Promise<{ browser: WebSocket; upstreamLeg: WebSocket }> {
  const browser = new WebSocket(url, { headers, maxPayload: 4 * size })
  t.teardown(() => browser.terminate())
  browser.on('error', () => {})
  const [[response]] = await Promise.all([
    once(browser, 'upgrade') as Promise<[IncomingMessage]>,
    once(browser, 'open'),
  ])
  const upstreamLeg = await upstream.next()
  browser.pause()
  // One message in fragments of a MiB, an empty ping after each. A frame
  // still arriving is no sign of life to the gateway (relay.ts), so as one
  // frame a loaded machine moved the message for longer than two beats of
  // a route pinging every 500 ms: the gateway dropped the upstream's leg as
  // dead (1014 to the browser) and nothing was ever queued.
  const fragment = Buffer.alloc(Math.min(MiB, size))
  for (let sent = 0; sent < size; sent += fragment.length) {
    const last = sent + fragment.length >= size
    upstreamLeg.send(last ? fragment.subarray(0, size - sent) : fragment, { binary: true, fin: last })
    upstreamLeg.ping()
  }
  // The gateway relays a message once it has all of it: its first bytes at
  // the browser say it holds the rest. Not a ping's (at most 127 bytes,
  // the upstream's 2): on a route that pings every 500 ms, one came first
  // on a loaded machine, the message not yet relayed, and nothing was queued.
  await new Promise<void>((resolve, reject) => {
    let received = 0
    const counted = (chunk: Buffer) => {
      received += chunk.length
      if (received <= 1024) return
      done()
      browser.pause()
      resolve()
    }
    const ended = (code: number, reason: Buffer) => {
      done()
      reject(new Error(`the browser's socket closed (${code} ${reason}) before the message was relayed`))
    }
    const done = () => {
      response.socket.off('data', counted)
      browser.off('close', ended)
    }
    response.socket.on('data', counted)
    browser.once('close', ended)
    browser.resume()
  })
  return { browser, upstreamLeg }
}
