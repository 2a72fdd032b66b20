import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import { constants, deflateRawSync } from 'node:zlib'
import t, { type Test } from 'tap'
import type { ServerOptions, WebSocket } from 'ws'
import { route, type TestRoute } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { type Stack, startStack } from '../../helpers/stack.js'
import {
  BOUND,
  browserHeaders,
  closed,
  metrics,
  nextMessage,
  openSocket,
  upgradeRequest,
  wsUpstream,
  wsUrl,
} from '../../helpers/websocket.js'

const KiB = 1024
const MiB = 1024 * KiB

/** A signed-in browser's socket on `/live` (the route `live` makes), and the upstream's end of it. */
async function live(
  t: Test,
  bounds: NonNullable<TestRoute['websocket']>,
  upstreamOptions: ServerOptions = {},
  clientOptions: Parameters<typeof openSocket>[2] = {},
) {
  const upstream = await wsUpstream(t, upstreamOptions)
  const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: bounds })] })
  const { jar } = await login(stack.gateway.url)
  const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar), clientOptions)
  t.teardown(() => browser.terminate())
  const far = await upstream.next()
  return { stack, upstream, jar, browser, far }
}

const boundCloses = (stack: Stack, leg: string, bound: string) =>
  metrics(stack).then((text) =>
    Number(
      new RegExp(
        `gatehouse_websocket_bound_closes_total\\{route="/live",leg="${leg}",bound="${bound}"\\} (\\d+)`,
      ).exec(text)?.[1] ?? 0,
    ),
  )

t.test('a browser message over maxMessage closes both legs with 1009; one at the limit passes', async (t) => {
  const { stack, browser, far } = await live(t, { maxMessage: 64 * KiB })
  browser.send(Buffer.alloc(64 * KiB, 1))
  t.equal((await nextMessage(browser)).length, 64 * KiB, 'a message of exactly maxMessage goes through')
  const ends = [closed(browser), closed(far)]
  browser.send(Buffer.alloc(64 * KiB + 1, 1))
  const [atBrowser, atUpstream] = await Promise.all(ends)
  t.equal(atBrowser!.code, 1009, 'the browser is told its message was too big')
  t.same(atUpstream, { code: 1009, reason: 'message too big' }, 'and the upstream why its socket ends')
  t.equal(await boundCloses(stack, 'browser', 'message_too_large'), 1)
})

t.test('an upstream message over maxMessage closes both legs with 1009', async (t) => {
  const { stack, browser, far } = await live(t, { maxMessage: 64 * KiB })
  far.send(Buffer.alloc(64 * KiB, 1))
  t.equal((await nextMessage(browser)).length, 64 * KiB)
  const ends = [closed(browser), closed(far)]
  far.send(Buffer.alloc(64 * KiB + 1, 1))
  const [atBrowser, atUpstream] = await Promise.all(ends)
  t.same(atBrowser, { code: 1009, reason: 'message too big' })
  t.equal(atUpstream!.code, 1009)
  t.equal(await boundCloses(stack, 'upstream', 'message_too_large'), 1)
})

/**
 * A signed-in browser's upgrade to `/live` written by hand, for frames no
 * WebSocket client sends; `ended` resolves with all the gateway sent once it
 * closes the connection, or rejects once BOUND passes; `closeFrame` with
 * the gateway's close frame, once it has come. `halfOpen` keeps the
 * socket writing after the gateway's FIN, as an attacker's would.
 */
async function rawSocket(t: Test, stack: Stack, halfOpen = false) {
  const { jar } = await login(stack.gateway.url)
  const { port } = new URL(stack.gateway.url)
  const socket = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: halfOpen })
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  let received = Buffer.alloc(0)
  let heardClose: (frame: Buffer) => void = () => {}
  const closeFrame = new Promise<Buffer>((resolve) => {
    heardClose = resolve
  })
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    const head = received.indexOf('\r\n\r\n')
    // The gateway sends nothing on this socket but its close frame (opcode 8).
    if (head !== -1 && received[head + 4] === 0x88 && received.length >= head + 8)
      heardClose(received.subarray(head + 4, head + 8))
  })
  const ended = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${BOUND} ms`)), BOUND)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(received)
    })
  })
  socket.write(upgradeRequest(stack, jar, '/live/feed'))
  return { socket, ended, closeFrame }
}

/** A frame header (RFC 6455 §5.2) of a masked binary frame announcing `length` bytes, as a client sends it. */
function maskedFrameHeader(length: number): Buffer {
  const header = Buffer.alloc(14)
  header[0] = 0x82 // FIN, binary
  header[1] = 0x80 | 127 // masked, 64-bit length
  header.writeBigUInt64BE(BigInt(length), 2)
  // The mask key: four zero bytes leave the payload as it is.
  return header
}

t.test(
  'websocket: true bounds a message at 1 MiB: a frame announcing 99 MiB is closed with 1009 at its header',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
    const raw = await rawSocket(t, stack)
    const opened = await upstream.next()
    // The red team's message: 99 MiB announced, 1 MiB of it sent, the rest held back.
    raw.socket.write(Buffer.concat([maskedFrameHeader(99 * MiB), Buffer.alloc(MiB)]))
    const upstreamEnd = closed(opened)
    const received = await raw.ended
    t.match(String(received), /^HTTP\/1\.1 101 /)
    const frames = received.subarray(received.indexOf('\r\n\r\n') + 4)
    // A close frame (opcode 8) with status 1009, unmasked from the server.
    t.same([...frames.subarray(0, 4)], [0x88, 0x02, 0x03, 0xf1], 'a close frame with 1009')
    t.equal((await upstreamEnd).code, 1009)
  },
)

/**
 * Writes `total` bytes to `socket` a MiB at a time, waiting for each to
 * drain; stops when nothing drains for `STALL` ms. Returns what drained.
 */
async function writeUntilStalled(socket: Socket, total: number): Promise<number> {
  const chunk = Buffer.alloc(MiB)
  let drained = 0
  while (drained < total) {
    if (!socket.write(chunk)) {
      const moved = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), STALL)
        socket.once('drain', () => {
          clearTimeout(timer)
          resolve(true)
        })
      })
      if (!moved) break
    }
    drained += chunk.length
  }
  return drained
}

/** How long a write may wait for `drain` before the reader counts as stopped. */
const STALL = 1_000 // ms

t.test(
  'a browser that sends on past a message too big is no longer read: TCP holds it back, the gateway holds nothing',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
    const raw = await rawSocket(t, stack, true)
    const opened = await upstream.next()
    const upstreamEnd = closed(opened)
    raw.socket.write(maskedFrameHeader(99 * MiB))
    t.same([...(await raw.closeFrame)], [0x88, 0x02, 0x03, 0xf1], 'a close frame with 1009')
    t.equal((await upstreamEnd).code, 1009)
    // Reading on would take all of it, to throw it away: the red team's
    // eight sockets took the gateway 68 MiB above its baseline that way.
    // What drains now is what the kernel's buffers hold.
    const drained = await writeUntilStalled(raw.socket, 64 * MiB)
    t.ok(drained < 32 * MiB, `${drained / MiB} MiB drained after the close, of 64 MiB sent`)
  },
)

t.test('a frame dribbled in slowly is no sign of life: its leg is dropped', async (t) => {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: { pingInterval: 100 } })],
  })
  const raw = await rawSocket(t, stack)
  const opened = await upstream.next()
  // Within maxMessage, a byte at a time: the pong a ping asks for can only
  // follow the frame (RFC 6455 §5.4: control frames go between frames).
  raw.socket.write(maskedFrameHeader(512 * KiB))
  const dribble = setInterval(() => raw.socket.write(Buffer.alloc(1)), 20)
  t.teardown(() => clearInterval(dribble))
  t.same(await closed(opened), { code: 1001, reason: 'browser went away' })
  await raw.ended
  t.pass('the browser leg is dropped')
})

t.test('no compression is negotiated with either side unless the route asks for it', async (t) => {
  // Both peers would compress if offered: the browser offers, the upstream accepts.
  const { browser, upstream } = await live(t, true, { perMessageDeflate: true })
  t.equal(browser.extensions, '', "the browser's offer is declined")
  t.equal(upstream.upgrades[0]!['sec-websocket-extensions'], undefined, 'the upstream is offered none')
})

t.test(
  'compression: true negotiates permessage-deflate on both legs, and maxMessage bounds the inflated size',
  async (t) => {
    const { stack, browser, far, upstream } = await live(
      t,
      { compression: true, maxMessage: 64 * KiB },
      { perMessageDeflate: true },
    )
    t.match(browser.extensions, /permessage-deflate/)
    t.match(upstream.upgrades[0]!['sec-websocket-extensions'], /permessage-deflate/)
    t.match(far.extensions, /permessage-deflate/)
    far.send(Buffer.alloc(32 * KiB))
    t.same(await nextMessage(browser), Buffer.alloc(32 * KiB), 'a message within the bound arrives intact')
    const ends = [closed(browser), closed(far)]
    // About a kilobyte on the wire, a megabyte once inflated.
    far.send(Buffer.alloc(MiB))
    const [atBrowser, atUpstream] = await Promise.all(ends)
    t.same(atBrowser, { code: 1009, reason: 'message too big' })
    t.equal(atUpstream!.code, 1009)
    t.equal(await boundCloses(stack, 'upstream', 'message_too_large'), 1)
  },
)

/**
 * A hostile upstream at the byte level: it accepts the upgrade with
 * permessage-deflate, then writes `frames` in one go, as no well-behaved
 * library would, so they reach the gateway in as few reads as possible.
 */
function deflatingUpstream(t: Test, frames: Buffer) {
  return hostileUpstream(t, (socket) => socket.write(frames), { deflate: true })
}

/**
 * An upstream at the byte level: it accepts the upgrade, with
 * permessage-deflate when `deflate`, then hands its socket to `attack`.
 * It keeps its socket writable after the gateway's FIN, as an attacker would.
 */
async function hostileUpstream(t: Test, attack: (socket: Socket) => void, { deflate = false } = {}) {
  const sockets: Socket[] = []
  let hungUp: () => void = () => {}
  /** Resolves when the gateway drops the connection. */
  const dropped = new Promise<void>((resolve) => {
    hungUp = resolve
  })
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    socket.once('close', hungUp)
    socket.once('data', (request: Buffer) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(String(request))![1]!
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(
        [
          'HTTP/1.1 101 Switching Protocols',
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Accept: ${accept}`,
          ...(deflate
            ? [
                'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover',
              ]
            : []),
          '',
          '',
        ].join('\r\n'),
      )
      attack(socket)
      socket.resume()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, dropped }
}

t.test('a browser that sends on past a protocol violation is no longer read either', async (t) => {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
  const raw = await rawSocket(t, stack, true)
  const upstreamEnd = closed(await upstream.next())
  // Opcode 3 is reserved (RFC 6455 §5.2): the connection fails with 1002.
  const header = maskedFrameHeader(16)
  header[0] = 0x83
  raw.socket.write(header)
  t.same([...(await raw.closeFrame)], [0x88, 0x02, 0x03, 0xea], 'a close frame with 1002')
  // No close frame from the browser will be read to pass on: the upstream is told at once.
  t.same(await upstreamEnd, { code: 1002, reason: 'protocol error' })
  t.equal(await boundCloses(stack, 'browser', 'protocol_error'), 1)
  const drained = await writeUntilStalled(raw.socket, 64 * MiB)
  t.ok(drained < 32 * MiB, `${drained / MiB} MiB drained after the close, of 64 MiB sent`)
})

t.test('an upstream that sends on past a message too big is no longer read either', async (t) => {
  let drained: Promise<number> = Promise.resolve(0)
  const upstream = await hostileUpstream(t, (socket) => {
    // An unmasked frame, as a server sends it, announcing 99 MiB.
    const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0])
    header.writeBigUInt64BE(BigInt(99 * MiB), 2)
    socket.write(header)
    drained = writeUntilStalled(socket, 64 * MiB)
  })
  const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
  const { jar } = await login(stack.gateway.url)
  const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => browser.terminate())
  t.same(await closed(browser), { code: 1009, reason: 'message too big' })
  const taken = await drained
  t.ok(taken < 32 * MiB, `${taken / MiB} MiB drained after the header, of 64 MiB sent`)
})

t.test('an upstream that breaks the protocol has the browser told 1002 at once', async (t) => {
  // Opcode 3 is reserved (RFC 6455 §5.2); unmasked, as a server sends.
  const upstream = await hostileUpstream(t, (socket) => socket.write(Buffer.from([0x83, 0x00])))
  const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
  const { jar } = await login(stack.gateway.url)
  const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => browser.terminate())
  t.same(await closed(browser), { code: 1002, reason: 'protocol error' })
  t.equal(await boundCloses(stack, 'upstream', 'protocol_error'), 1)
})

t.test(
  'with compression, deflated messages that outrun flow control close the socket instead of filling memory',
  async (t) => {
    // RFC 7692 §7.2.1: deflate, then drop the trailing 0x00 0x00 0xff 0xff.
    const deflated = deflateRawSync(Buffer.alloc(MiB), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(
      0,
      -4,
    )
    const frame = Buffer.concat([
      Buffer.from([0xc2, 126, deflated.length >> 8, deflated.length & 0xff]),
      deflated,
    ])
    t.ok(deflated.length < 2 * KiB, `${deflated.length} bytes on the wire for 1 MiB`)
    // 200 MiB once inflated, each message within the bound, all written at once.
    const upstream = await deflatingUpstream(t, Buffer.concat(Array.from({ length: 200 }, () => frame)))
    const stack = await startStack(t, {
      routes: () => [route('/live', upstream.url, { websocket: { compression: true } })],
    })
    const { jar } = await login(stack.gateway.url)
    // The browser reads nothing, and takes no compression (a browser that
    // did would have the gateway deflate the zeros again): every inflated
    // message waits in the gateway.
    const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar), {
      perMessageDeflate: false,
    })
    browser.pause()
    t.teardown(() => browser.terminate())
    // Reading on for its close frame would inflate all it has queued only
    // to throw it away: the gateway hangs up instead.
    await Promise.race([
      upstream.dropped,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the upstream is still connected')), BOUND),
      ),
    ])
    t.pass('the gateway drops the upstream that outran flow control')
    const end = closed(browser)
    browser.resume()
    t.equal((await end).code, 1009, 'and the browser, once it reads again: closed, not buffered')
    t.equal(await boundCloses(stack, 'upstream', 'message_too_large'), 1)
  },
)

t.test(
  'a browser that stops answering pings is dropped, and the upstream is told it went away',
  async (t) => {
    // `autoPong: false`: the client reads the gateway's pings and never answers.
    const { stack, browser, far } = await live(t, { pingInterval: 100 }, {}, { autoPong: false })
    const [atBrowser, atUpstream] = await Promise.all([closed(browser), closed(far)])
    t.equal(atBrowser!.code, 1006, 'dropped without a closing handshake: the peer is gone')
    t.same(atUpstream, { code: 1001, reason: 'browser went away' })
    t.equal(await boundCloses(stack, 'browser', 'dead_peer'), 1)
  },
)

t.test('an upstream that stops answering pings is dropped, and the browser is told (1014)', async (t) => {
  const { stack, browser, far } = await live(t, { pingInterval: 100 }, { autoPong: false })
  const [atBrowser, atUpstream] = await Promise.all([closed(browser), closed(far)])
  t.same(atBrowser, { code: 1014, reason: 'upstream unreachable' })
  t.equal(atUpstream!.code, 1006)
  t.equal(await boundCloses(stack, 'upstream', 'dead_peer'), 1)
})

t.test(
  "a silent socket whose peers answer stays open; the gateway's pings and pongs stay its own",
  async (t) => {
    const { browser, far } = await live(t, { pingInterval: 100 })
    const pongs: WebSocket[] = []
    browser.on('pong', () => pongs.push(browser))
    far.on('pong', () => pongs.push(far))
    // Ten beats each side: five times what drops a peer that does not answer.
    const pinged = (socket: WebSocket) =>
      Promise.race([
        once(socket, 'ping'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no ping')), BOUND)),
      ])
    for (let i = 0; i < 10; i++) await Promise.all([pinged(browser), pinged(far)])
    t.same(pongs, [], "neither peer got the other's answer to a gateway ping")
    browser.send('still here')
    t.equal(String(await nextMessage(browser)), 'still here', 'the socket still relays')
  },
)
