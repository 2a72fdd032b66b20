import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { HIGH_WATER_MARK } from '../../../src/proxy/websocket/relay.js'
import { route } from '../../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'

const MiB = 1024 * 1024
const COUNT = 64
/** Longest any close may take here before the test fails; `ws`'s own close timer is 30 s. */
const BOUND = 5_000 // ms
/**
 * What may sit between a stalled reader and the writer besides the relay's
 * own buffer: on each of the two TCP connections a send and a receive buffer
 * (which Linux sizes itself, a few MiB on loopback), `ws`'s message in parse
 * and its socket's read buffer. About 4 MiB in all was measured; the bound
 * is generous, and still far below the COUNT MiB that leave a writer
 * nothing stops.
 */
const IN_FLIGHT = 24 * MiB

/**
 * A signed-in browser's socket on a route to a real `ws` upstream, the
 * upstream's end of it, and the gateway re-checking sessions every 100 ms;
 * the browser answers pings unless `autoPong` is false.
 */
async function bridged(t: Test, { autoPong = true } = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  const connected = once(wss, 'connection') as Promise<[WebSocket]>
  const upstreamUrl = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`
  const stack = await startStack(t, {
    routes: () => [route('/live', upstreamUrl, { websocket: true })],
    gateway: { websocketRecheck: 100 },
  })
  t.teardown(async () => {
    await stack.close()
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  const { jar } = await login(stack.gateway.url)
  const cookie = jar.header(`${stack.gateway.url}/live`)
  const browser = new WebSocket(`${stack.gateway.url.replace(/^http/, 'ws')}/live/feed`, {
    headers: { origin: stack.gateway.url, cookie },
    autoPong,
  })
  t.teardown(() => browser.terminate())
  await once(browser, 'open')
  const [upstream] = await connected
  return { stack, jar, browser, upstream }
}

/** `count` distinct 1 MiB messages and the hash of all of them in order. */
function payload(count = COUNT) {
  const messages = Array.from({ length: count }, () => randomBytes(MiB))
  return { messages, hash: hashOf(messages) }
}

function hashOf(messages: readonly Buffer[]): string {
  const hash = createHash('sha256')
  for (const message of messages) hash.update(message)
  return hash.digest('hex')
}

/**
 * Sends every message with a callback and resolves with how many completed
 * once they all have, or once none has completed for 40 polls in a row
 * (about 1 s) while the writer still holds data: the reader stopped reading.
 * A busy machine that stalls the gateway longer than that only lowers the
 * count, which the tests bound from above.
 */
async function sendUntilStalled(writer: WebSocket, messages: readonly Buffer[]): Promise<number> {
  let completed = 0
  for (const message of messages) writer.send(message, { binary: true }, (err) => err || completed++)
  let last = -1
  let still = 0
  while (completed < messages.length && still < 40) {
    await new Promise((resolve) => setTimeout(resolve, 25))
    still = completed === last && writer.bufferedAmount > 0 ? still + 1 : 0
    last = completed
  }
  return completed
}

function receive(reader: WebSocket, count: number): Promise<Buffer[]> {
  const received: Buffer[] = []
  return new Promise((resolve) => {
    reader.on('message', (data: Buffer) => {
      received.push(data)
      if (received.length === count) resolve(received)
    })
  })
}

function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${BOUND} ms`)), BOUND)
    socket.once('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ code, reason: String(reason) })
    })
  })
}

for (const [sender, reader] of [
  ['upstream', 'browser'],
  ['browser', 'upstream'],
] as const) {
  t.test(
    `when the ${reader} stops reading, the ${sender} streaming to it is stopped, and nothing is lost`,
    async (t) => {
      const legs = await bridged(t)
      const { browser, upstream } = legs
      legs[reader].pause()
      const { messages, hash } = payload()
      const completed = await sendUntilStalled(legs[sender], messages)
      t.ok(
        completed * MiB <= HIGH_WATER_MARK + IN_FLIGHT,
        `${completed} of ${COUNT} MiB left the ${sender}: the gateway stopped reading it`,
      )
      const arrived = receive(legs[reader], COUNT)
      legs[reader].resume()
      t.equal(hashOf(await arrived), hash, 'every message arrives, in order, intact')
      const ends = [closed(browser), closed(upstream)]
      legs[sender].close(1000, 'done')
      t.same(await Promise.all(ends), [
        { code: 1000, reason: 'done' },
        { code: 1000, reason: 'done' },
      ])
    },
  )
}

/**
 * Sends up to `most` pings with a callback, a mebibyte at a time while the
 * writer holds less, and resolves with how many it sent and how many
 * completed once all `most` have, or once none has completed for 40 polls
 * in a row (about 1 s) while the writer still holds data, as
 * sendUntilStalled.
 */
async function pingUntilStalled(
  writer: WebSocket,
  most: number,
  payload: Buffer,
): Promise<{ sent: number; completed: number }> {
  let sent = 0
  let completed = 0
  let last = -1
  let still = 0
  // Fed a mebibyte at a time while the writer's own buffer is low, so that
  // however much the kernel buffers between the three (Linux grows a
  // socket's receive buffer to tcp_rmem's maximum, 32 MiB on some machines,
  // while the gateway still reads), the pings outgrow it, and the writer
  // never holds more than it must.
  const batch = Math.ceil(MiB / (payload.length + 2))
  while (completed < sent ? still < 40 : sent < most) {
    if (writer.bufferedAmount < MiB && sent < most) {
      const n = Math.min(batch, most - sent)
      for (let i = 0; i < n; i++) writer.ping(payload, undefined, (err) => err || completed++)
      sent += n
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
    still = completed === last && writer.bufferedAmount > 0 ? still + 1 : 0
    last = completed
  }
  return { sent, completed }
}

// The gateway relays the peers' pings end to end and counts them against
// its bounds. It once resumed a leg it had paused only when a relayed
// message was written: a leg paused by pings alone stayed paused once the
// reader caught up, and the socket hung, its heartbeat sparing it as
// paused.
t.test(
  'pings an upstream sends to a browser that stops reading pause the upstream, which is read again once the browser reads',
  async (t) => {
    // The browser answers none: `ws` would drop a peer that pings faster
    // than its pongs leave, and the test counts what the gateway relays.
    const { browser, upstream } = await bridged(t, { autoPong: false })
    browser.pause()
    // Up to 48 MiB of pings, more than the kernel's buffers between the
    // gateway and the browser hold, so the gateway's own fill and it stops
    // reading.
    const { sent: count, completed } = await pingUntilStalled(upstream, 400_000, Buffer.alloc(125, 1))
    t.ok(
      completed < count,
      `${completed} of ${count} pings left the upstream: the gateway stopped reading it`,
    )
    let pings = 0
    browser.on('ping', () => pings++)
    const after = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${BOUND} ms`)), BOUND)
      browser.once('message', (data: Buffer) => {
        clearTimeout(timer)
        resolve(String(data))
      })
    })
    upstream.send('after the pings')
    browser.resume()
    t.equal(await after, 'after the pings', 'a message behind the pings arrives')
    t.equal(pings, count, 'and every ping before it')
  },
)

t.test(
  'a session that ends closes a socket the gateway stopped reading, with 4401 at both ends',
  async (t) => {
    const { stack, jar, browser, upstream } = await bridged(t)
    upstream.pause()
    // Enough to stall (about 4 MiB are in flight): the rest, queued in the
    // browser, is ahead of its answer to the gateway's close, and the
    // gateway reads it to throw it away while the upstream waits.
    await sendUntilStalled(browser, payload(16).messages)
    const upstreamEnd = once(upstream, 'close') as Promise<[number, Buffer]>
    const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
    // The browser's answer to the gateway's close arrives on the leg the
    // gateway stopped reading: without reading it again the close waits for
    // `ws`'s close timer and ends as a 1006. The upstream reads again only
    // once the browser's leg has closed, so that nothing but the close
    // resumes that leg.
    const browserEnd = closed(browser).then((end) => {
      upstream.resume()
      return end
    })
    const logout = jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)
    t.same(await browserEnd, { code: 4401, reason: 'session ended' })
    t.equal((await logout).status, 200)
    // The upstream finds the close behind the megabytes it was sent. Its
    // grace runs from when the gateway's close frame has been written, not
    // from the close: once it reads (within a grace of the close, which the
    // browser's answer a few MiB behind leaves room for), however long it
    // takes to read what is ahead of the frame, it hears why. (Until
    // 2026-12-06 the grace ran from the close, and a loaded machine's
    // upstream, reading, was dropped with 1006 in two runs of four.)
    const [code, reason] = await upstreamEnd
    t.same(
      { code, reason: String(reason) },
      { code: 4401, reason: 'session ended' },
      'the upstream is told why',
    )
  },
)
