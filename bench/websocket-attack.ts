/**
 * The gateway's memory while hostile WebSocket peers attack it: the red
 * team's attacks, replayed against Gatehouse in a process of its own, its
 * resident set read from /proc before and at the peak of each attack.
 *
 *   npx tsx bench/websocket-attack.ts              the bounds as configured by default
 *   npx tsx bench/websocket-attack.ts --unbounded  100 MiB messages and compression, as ws's defaults were
 *   npx tsx bench/websocket-attack.ts --red-team   only the red team's attacks (what the test runs)
 *
 * Each attack gets a freshly started gateway. Prints one JSON line per
 * attack, then a table; exits 1 when one of the red team's attacks took
 * the gateway more than BOUND above its baseline. The others (floods
 * within the bounds) are reported: their live memory is bounded by flow
 * control, but what they peak at is mostly garbage V8 has not yet
 * collected, which it does once external memory has grown by 64 MiB.
 *
 * Floods of 1-byte messages are judged on what the gateway holds at the
 * stall, its heap and external memory after a full collection: relaying
 * one 64 KiB read of them makes some 20 MB of objects that live until the
 * read is done, which V8 promotes to its old space and collects only at
 * its next full collection, so the peak of the resident set is some
 * 300 MiB above the baseline whatever flow control holds, with browsers
 * reading or not, and for one socket as for eight.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { constants, deflateRawSync } from 'node:zlib'
import { WebSocket, WebSocketServer } from 'ws'
import { startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { onFreePort } from '../test/helpers/ports.js'
import { spawnPeer } from './peers.js'

const MiB = 1024 * 1024
/** What an attack may add to the gateway's resident set, at its peak. */
export const BOUND = 64 * MiB
/** Sockets per attack, as the red team opened them. */
const SOCKETS = { user: 4, anonymous: 8 }
/**
 * Sockets per flood of 1-byte messages: fewer, as each must first fill the
 * kernel's buffers of a loopback connection (about 4 MiB, 1.4 million
 * messages from an upstream) before the gateway holds any, and the gateway
 * relays some 300,000 a second. Without a bound on frames each held some
 * 114 MiB (upstream to browser) or 25 MiB (browser to upstream).
 */
const FLOODED = { upstream: 2, browser: 4 }

const { values: args } = parseArgs({
  options: {
    unbounded: { type: 'boolean', default: false },
    'red-team': { type: 'boolean', default: false },
  },
})

const stops: (() => Promise<unknown>)[] = []
try {
  const results = await main()
  console.log(table(results))
  if (results.some((r) => r.judged && measured(r) > BOUND)) process.exitCode = 1
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}

interface AttackResult {
  readonly attack: string
  /** One of the red team's attacks, held to BOUND; the others are reported. */
  readonly judged: boolean
  readonly sockets: number
  /** Bytes the attackers sent (or had the upstream send). */
  readonly sent: number
  readonly baseline: number
  readonly peak: number
  readonly peakAboveBaseline: number
  /** For the floods of 1-byte messages: heap and external memory above the baseline's, both after a full collection, at the stall. */
  readonly liveAboveBaseline?: number
  /** How the attack's sockets ended: close codes, or `open` for those the gateway holds within its bounds. */
  readonly ends: Record<string, number>
}

async function main(): Promise<AttackResult[]> {
  const upstream = await benchUpstream()
  stops.push(upstream.close)
  const deflating = await deflatingUpstream()
  stops.push(deflating.close)
  const tiny = await tinyFrameUpstream()
  stops.push(tiny.close)
  const clientSecret = randomBytes(24).toString('base64url')
  const sessionSecret = randomBytes(32).toString('base64url')
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ws-attack-'))
  stops.push(async () => rmSync(dir, { recursive: true, force: true }))
  // --unbounded: ws's own defaults, as the gateway had them (100 MiB, deflate offered upstream).
  const bounds = args.unbounded ? '{ maxMessage: 100mb, compression: true }' : 'true'
  const file = join(dir, 'gatehouse.yaml')
  const configFor = (port: number, issuer: string) =>
    `server: { host: 127.0.0.1, port: ${port}, publicUrl: http://127.0.0.1:${port} }
oidc:
  issuer: ${issuer}
  clientId: gatehouse-bench
  clientSecret: ${clientSecret}
  authorizationParams: { prompt: consent }
session: { secret: ${sessionSecret} }
logging: { level: warn }
metrics: { port: 0 }
routes:
  - { path: /live, upstream: ${upstream.url}, websocket: ${bounds} }
  - { path: /public, upstream: ${upstream.url}, token: none, csrf: false, websocket: ${bounds} }
  - { path: /zeros, upstream: ${deflating.url}, token: none, csrf: false, websocket: ${bounds} }
  - { path: /tiny, upstream: ${tiny.url}, token: none, csrf: false, websocket: ${bounds} }
  - { path: /deflate, upstream: ${deflating.url}, token: none, csrf: false, websocket: ${args.unbounded ? bounds : '{ compression: true }'} }
`

  /**
   * A gateway of its own for each attack, signed in and warmed up (one
   * socket through it), so no attack inherits another's heap. The IdP must
   * know its redirect URI before it listens, so each gets an IdP of its own
   * on a port onFreePort picks again should another process take it first.
   */
  async function fresh() {
    const { idp, gateway } = await onFreePort(async (port) => {
      const idp = await startDevIdp({
        accessTokenTtl: 3_600,
        clients: [
          {
            clientId: 'gatehouse-bench',
            clientSecret,
            redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
          },
        ],
      })
      writeFileSync(file, configFor(port, idp.issuer))
      try {
        return { idp, gateway: await spawnPeer(['gatehouse', file]) }
      } catch (err) {
        await idp.close()
        throw err
      }
    })
    stops.push(() => idp.close())
    const { jar } = await login(gateway.url)
    const host = new URL(gateway.url)
    const warm = await openWs(`ws://${host.host}/public/echo`)
    await new Promise((resolve) => warm.once('message', resolve).send('hello'))
    warm.close()
    const rss = memoryOf(gateway.pid)
    return { gateway, host, cookie: jar.header(`${gateway.url}/`) ?? '', rss, baseline: rss.now() }
  }

  const results: AttackResult[] = []
  const run = async (
    attack: string,
    sockets: number,
    // `live`: what the gateway holds above its own baseline, where measured.
    body: (
      target: Awaited<ReturnType<typeof fresh>>,
    ) => Promise<{ sent: number; ends: string[]; live?: number }>,
    judged = false,
  ) => {
    if (args['red-team'] && !judged) return
    const target = await fresh()
    try {
      target.rss.resetPeak()
      const { sent, ends, live } = await body(target)
      const peak = target.rss.peak()
      const result: AttackResult = {
        attack,
        judged,
        sockets,
        sent,
        baseline: target.baseline,
        peak,
        peakAboveBaseline: peak - target.baseline,
        ...(live !== undefined && { liveAboveBaseline: live }),
        ends: Object.fromEntries(
          [...new Set(ends)].map((end) => [end, ends.filter((e) => e === end).length]),
        ),
      }
      console.log(JSON.stringify(result))
      results.push(result)
    } finally {
      await target.gateway.stop()
    }
  }
  const many = <T>(count: number, open: () => Promise<T>) => Promise.all(Array.from({ length: count }, open))

  await run(
    'a signed-in user: 99 MiB announced, 95 MiB sent, per socket',
    SOCKETS.user,
    async ({ host, cookie, gateway }) => {
      const sockets = await many(SOCKETS.user, () =>
        rawUpgrade(host, '/live/feed', { Cookie: cookie, Origin: gateway.url }),
      )
      const sent = await Promise.all(sockets.map((raw) => announceAndSend(raw.socket, 99 * MiB, 95 * MiB)))
      return { sent: sum(sent), ends: await Promise.all(sockets.map(rawEnd)) }
    },
    true,
  )
  await run(
    'anonymous on token: none: 99 MiB announced, 95 MiB sent, per socket',
    SOCKETS.anonymous,
    async ({ host }) => {
      const sockets = await many(SOCKETS.anonymous, () => rawUpgrade(host, '/public/feed', {}))
      const sent = await Promise.all(sockets.map((raw) => announceAndSend(raw.socket, 99 * MiB, 95 * MiB)))
      return { sent: sum(sent), ends: await Promise.all(sockets.map(rawEnd)) }
    },
    true,
  )
  await run(
    'a compromised upstream sends 1 MB of deflated zeros, browsers not reading',
    SOCKETS.anonymous,
    async ({ host }) => {
      const before = deflating.sent
      const sockets = await many(SOCKETS.anonymous, () =>
        openWs(`ws://${host.host}/zeros/feed`, true).catch((err: { status?: number }) => err),
      )
      await stalled(() => deflating.sent)
      const ends = await Promise.all(sockets.map(wsEnd))
      return { sent: deflating.sent - before, ends }
    },
    true,
  )
  await run(
    'a compromised upstream floods 1-byte messages, browsers not reading',
    FLOODED.upstream,
    async ({ host, gateway }) => {
      const baseline = await gateway.live()
      const before = tiny.sent
      const sockets = await many(FLOODED.upstream, () => openWs(`ws://${host.host}/tiny/feed`, true))
      await stalled(readsOf(gateway.pid))
      const live = (await gateway.live()) - baseline
      return { sent: tiny.sent - before, live, ends: await Promise.all(sockets.map(wsEnd)) }
    },
    true,
  )
  await run(
    'anonymous on token: none: 1-byte messages to an upstream that stops reading',
    FLOODED.browser,
    async ({ host, gateway }) => {
      const baseline = await gateway.live()
      const sockets = await many(FLOODED.browser, () => rawUpgrade(host, '/public/sink', {}))
      let sent = 0
      for (const raw of sockets)
        void flood(raw.socket, tinyFrames(true), (bytes) => {
          sent += bytes
        })
      await stalled(readsOf(gateway.pid))
      const live = (await gateway.live()) - baseline
      return { sent, live, ends: await Promise.all(sockets.map(rawEnd)) }
    },
    true,
  )
  await run(
    'anonymous: messages just under the limit, to an upstream that stops reading',
    SOCKETS.anonymous,
    async ({ host }) => {
      const size = args.unbounded ? 16 * MiB : MiB
      const sockets = await many(SOCKETS.anonymous, () => openWs(`ws://${host.host}/public/sink`))
      const sent = await Promise.all(sockets.map((socket) => sendUntilStalled(socket, 64, size)))
      return { sent: sum(sent), ends: await Promise.all(sockets.map(wsEnd)) }
    },
  )
  await run(
    'an upstream streams 64 MiB to each browser, which stops reading',
    SOCKETS.anonymous,
    async ({ host }) => {
      const before = upstream.flooded
      const sockets = await many(SOCKETS.anonymous, () => openWs(`ws://${host.host}/public/flood`, true))
      await stalled(() => upstream.flooded)
      return { sent: upstream.flooded - before, ends: await Promise.all(sockets.map(wsEnd)) }
    },
  )
  if (!args.unbounded)
    await run(
      'compression: true (opt-in): 1 MB of deflated zeros, browsers not reading',
      SOCKETS.anonymous,
      async ({ host }) => {
        const before = deflating.sent
        const sockets = await many(SOCKETS.anonymous, () => openWs(`ws://${host.host}/deflate/zeros`, true))
        await stalled(() => deflating.sent)
        return { sent: deflating.sent - before, ends: await Promise.all(sockets.map(wsEnd)) }
      },
    )
  return results
}

/**
 * How a socket ended: read again, its close code behind what the gateway
 * sent; `open` if the gateway still holds it, within its bounds, 2 s on;
 * `refused <status>` if its upgrade was.
 */
async function wsEnd(socket: WebSocket | { status?: number }): Promise<string> {
  if (!(socket instanceof WebSocket)) return `refused ${socket.status ?? '?'}`
  if (socket.readyState === WebSocket.CLOSED) return 'closed'
  const end = new Promise<string>((resolve) => socket.once('close', (code) => resolve(String(code))))
  socket.resume()
  const result = await Promise.race([
    end,
    new Promise<string>((resolve) => setTimeout(() => resolve('open'), 2_000)),
  ])
  socket.terminate()
  return result
}

/**
 * What the process has read (proc(5)'s `rchar`, which counts reads from
 * sockets), in reads of the size Node makes them, 64 KiB: it stops growing
 * once the gateway reads none of the attack's. The few bytes a second it
 * reads otherwise do not count.
 */
function readsOf(pid: number): () => number {
  return () =>
    Math.floor(Number(/^rchar:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1]) / 65_536)
}

/** The gateway's resident set, from /proc: now, and its peak since the last reset. */
function memoryOf(pid: number) {
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) *
    1024
  return {
    now: () => field('VmRSS'),
    peak: () => field('VmHWM'),
    // proc(5): writing 5 to clear_refs resets the peak resident set size.
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
  }
}

/**
 * The bench's upstream: by path, an echo, a sink that never reads
 * (`/sink`), or a flood of 1 MiB messages that ignores nothing
 * (`/flood`, 64 per socket, as fast as the gateway takes them).
 */
async function benchUpstream() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((resolve) => wss.once('listening', resolve))
  const state = { flooded: 0 }
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    socket.on('error', () => {})
    if (request.url?.endsWith('/sink')) socket.pause()
    else if (request.url?.endsWith('/flood')) {
      const message = Buffer.alloc(MiB - 16, 7)
      for (let i = 0; i < 64; i++)
        socket.send(message, (err) => {
          if (!err) state.flooded += message.length
        })
    } else socket.on('message', (data, binary) => socket.send(data as Buffer, { binary }))
  })
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    get flooded() {
      return state.flooded
    },
    close: async () => {
      for (const client of wss.clients) client.terminate()
      await new Promise((resolve) => wss.close(resolve))
    },
  }
}

/**
 * A compromised upstream at the byte level: it accepts permessage-deflate
 * and writes 1 MB of deflated zeros, in frames of 1 MiB inflated each,
 * all at once. On a route without compression the gateway never offers
 * the extension, and refuses the handshake that claims it.
 */
async function deflatingUpstream() {
  // RFC 7692 §7.2.1: deflate, then drop the trailing 0x00 0x00 0xff 0xff.
  const deflated = deflateRawSync(Buffer.alloc(MiB), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4)
  const frame = Buffer.concat([
    Buffer.from([0xc2, 126, deflated.length >> 8, deflated.length & 0xff]),
    deflated,
  ])
  const frames = Buffer.concat(Array.from({ length: Math.floor(MiB / frame.length) }, () => frame))
  return rawUpstream(
    'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n',
    (socket, taken) =>
      socket.write(frames, (err) => {
        if (!err) taken(frames.length)
      }),
  )
}

/**
 * A compromised upstream that writes 1-byte messages as fast as the gateway
 * takes them: each is a write of its own towards a browser that does not
 * read.
 */
function tinyFrameUpstream() {
  return rawUpstream('', (socket, taken) => flood(socket, tinyFrames(false), taken))
}

/**
 * An upstream at the byte level, so it can write frames no library would:
 * it accepts any handshake, with `extensions` (a header line or none), and
 * hands the socket to `attack`, which reports the bytes the gateway took.
 */
async function rawUpstream(
  extensions: string,
  attack: (socket: Socket, taken: (bytes: number) => void) => void,
) {
  const sockets = new Set<Socket>()
  const state = { sent: 0 }
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('data', (request: Buffer) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(String(request))?.[1] ?? ''
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extensions}\r\n`,
      )
      attack(socket, (bytes) => {
        state.sent += bytes
      })
      socket.resume()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get sent() {
      return state.sent
    },
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * 64 KiB, one read of the gateway's, of binary messages of one byte each:
 * 3 bytes a frame from an upstream, 7 from a browser, whose frames are
 * masked (RFC 6455 §5.3).
 */
function tinyFrames(masked: boolean): Buffer {
  const frame = masked ? Buffer.from([0x82, 0x81, ...randomBytes(4), 7]) : Buffer.from([0x82, 0x01, 7])
  return Buffer.concat(Array.from({ length: Math.floor(65_536 / frame.length) }, () => frame))
}

/**
 * Writes `chunk` again and again until the connection closes, telling
 * `taken` of each the gateway took. The kernel wakes a writer only once
 * a good part of its buffer is free, which with the gateway relaying
 * slowly can take seconds: the flood does not give up.
 */
async function flood(socket: Socket, chunk: Buffer, taken: (bytes: number) => void): Promise<void> {
  while (!socket.destroyed && socket.writable) {
    if (!socket.write(chunk) && !(await drained(socket, Number.POSITIVE_INFINITY))) break
    taken(chunk.length)
  }
}

interface RawSocket {
  readonly socket: Socket
  /** The close code the gateway sent, or `dropped` when the connection ended without one. */
  readonly end: Promise<string>
}

/** A WebSocket handshake by hand, so the attacker can then write frames no library would. */
function rawUpgrade(host: URL, path: string, headers: Record<string, string>): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(host.port), host.hostname)
    socket.on('error', () => {})
    const lines = Object.entries({
      Host: host.host,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      ...headers,
    }).map(([name, value]) => `${name}: ${value}`)
    socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`)
    let received = Buffer.alloc(0)
    let upgraded = false
    let closeCode: (end: string) => void = () => {}
    const end = new Promise<string>((resolve) => {
      closeCode = resolve
    })
    socket.on('data', (chunk: Buffer) => {
      // Keep only the tail: what the gateway sends after the 101 is small.
      received = Buffer.concat([received, chunk]).subarray(-4096)
      if (!upgraded) {
        const head = received.indexOf('\r\n\r\n')
        if (head === -1) return
        if (!/^HTTP\/1\.1 101 /.test(String(received.subarray(0, head))))
          return reject(new Error(`upgrade refused: ${String(received).split('\r\n')[0]}`))
        upgraded = true
        received = received.subarray(head + 4)
        resolve({ socket, end })
      }
      // A close frame from the server: opcode 8, unmasked, a 2-byte status.
      const at = received.indexOf(Buffer.from([0x88, 0x02]))
      if (at !== -1 && received.length >= at + 4) closeCode(String(received.readUInt16BE(at + 2)))
    })
    socket.once('close', () => closeCode('dropped'))
  })
}

/** Writes a masked frame header announcing `announced` bytes, then `send` of them while the gateway takes them. */
async function announceAndSend(socket: Socket, announced: number, send: number): Promise<number> {
  const header = Buffer.alloc(14)
  header[0] = 0x82
  header[1] = 0x80 | 127
  header.writeBigUInt64BE(BigInt(announced), 2)
  socket.write(header)
  const chunk = Buffer.alloc(MiB)
  let sent = 0
  while (sent < send && !socket.destroyed && socket.writable) {
    if (!socket.write(chunk) && !(await drained(socket))) break
    sent += chunk.length
  }
  return sent
}

/** True once `socket` drains; false if it closes first, or the gateway takes nothing for `patience` ms. */
function drained(socket: Socket, patience = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (result: boolean) => {
      clearTimeout(timer)
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      resolve(result)
    }
    const onDrain = () => done(true)
    const onClose = () => done(false)
    const timer = Number.isFinite(patience) ? setTimeout(() => done(false), patience) : undefined
    socket.once('drain', onDrain)
    socket.once('close', onClose)
  })
}

/** How a raw socket ended, or `open` if the gateway still holds it, within its bounds, 2 s after the attack. */
async function rawEnd(raw: RawSocket): Promise<string> {
  const end = await Promise.race([
    raw.end,
    new Promise<string>((resolve) => setTimeout(() => resolve('open'), 2_000)),
  ])
  raw.socket.destroy()
  return end
}

/** A client without compression, as an attacker's (or a browser that declines it); `stopReading` pauses it once open. */
function openWs(url: string, stopReading = false): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 })
    socket.once('open', () => {
      if (stopReading) socket.pause()
      resolve(socket)
    })
    socket.once('unexpected-response', (_request, response) => {
      response.resume()
      reject({ status: response.statusCode })
    })
    socket.once('error', reject)
  })
}

/** Sends `count` messages of `size` bytes; resolves with the bytes the gateway took once it stops taking them. */
async function sendUntilStalled(socket: WebSocket, count: number, size: number): Promise<number> {
  let taken = 0
  const message = Buffer.alloc(size - 16, 3)
  for (let i = 0; i < count; i++)
    socket.send(message, { binary: true }, (err) => {
      if (!err) taken += message.length
    })
  await stalled(() => taken)
  return taken
}

/** Resolves once `progress` has not moved for a second. */
async function stalled(progress: () => number): Promise<void> {
  let last = -1
  let still = 0
  while (still < 10) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    still = progress() === last ? still + 1 : 0
    last = progress()
  }
}

/** What BOUND holds an attack to: its live memory where that was measured, else the peak of its resident set. */
function measured(r: AttackResult): number {
  return r.liveAboveBaseline ?? r.peakAboveBaseline
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

function table(results: readonly AttackResult[]): string {
  const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`
  return [
    `| Attack | Sockets | Sent | Peak RSS above baseline (${mb(results[0]?.baseline ?? 0)}) | Live after a collection | Goal | Sockets ended |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.attack} | ${r.sockets} | ${mb(r.sent)} | ${mb(r.peakAboveBaseline)} | ${r.liveAboveBaseline === undefined ? '' : mb(r.liveAboveBaseline)} | ${r.judged ? `${r.liveAboveBaseline === undefined ? 'peak' : 'live'} ≤ ${mb(BOUND)}` : 'reported'} | ${Object.entries(
          r.ends,
        )
          .map(([end, n]) => `${n} × ${end}`)
          .join(', ')} |`,
    ),
  ].join('\n')
}
