import t, { type Test } from 'tap'
import type { WebSocket } from 'ws'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import {
  browserHeaders,
  closed,
  metrics,
  nextMessage,
  openSocket,
  wsUpstream,
  wsUrl,
} from '../../helpers/websocket.js'

/**
 * A message may come in fragments (RFC 6455 §5.4), which `ws` holds until
 * the last one, each a Buffer of its own whatever its size: a 1 MiB message
 * sent as a million one-byte fragments, 7 MB on the wire, would be a million
 * objects of heap on one leg. `ws` (8.23 and later) refuses a message of
 * more than 16,384 fragments (its `maxFragments`, which the gateway leaves at
 * its default on both legs) with 1008; the gateway tells the other leg the
 * same, as for any protocol error. At the bound a leg holds about 2 MiB of
 * heap for a 16 KiB message.
 */
const MAX_FRAGMENTS = 16_384

/** `count` one-byte frames of one binary message, the last with FIN only if `fin`; masked when `mask`. */
function fragments(count: number, fin: boolean, mask: boolean): Buffer {
  const frames: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const first = i === 0
    const last = i === count - 1
    const opcode = first ? 0x02 : 0x00
    // A zero mask key leaves the payload as it is.
    frames.push(Buffer.from([(last && fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | 1]))
    if (mask) frames.push(Buffer.alloc(4))
    frames.push(Buffer.from([i % 256]))
  }
  return Buffer.concat(frames)
}

/** Writes raw bytes on a `ws` socket's connection: frames no WebSocket client or server would send. */
function writeRaw(socket: WebSocket, bytes: Buffer): void {
  ;(socket as unknown as { _socket: { write(b: Buffer): void } })._socket.write(bytes)
}

async function live(t: Test) {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
  const { jar } = await login(stack.gateway.url)
  const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => browser.terminate())
  const far = await upstream.next()
  return { stack, browser, far }
}

const protocolCloses = (text: string, leg: string) =>
  Number(
    new RegExp(
      `gatehouse_websocket_bound_closes_total\\{route="/live",leg="${leg}",bound="protocol_error"\\} (\\d+)`,
    ).exec(text)?.[1] ?? 0,
  )

t.test(
  'a browser message of 16,384 fragments is relayed whole; one more fragment closes both legs with 1008',
  async (t) => {
    const { stack, browser, far } = await live(t)
    const relayed = nextMessage(far)
    writeRaw(browser, fragments(MAX_FRAGMENTS, true, true))
    const message = await relayed
    t.equal(message.length, MAX_FRAGMENTS, 'the message at the bound arrives whole')
    t.equal(message[MAX_FRAGMENTS - 1], (MAX_FRAGMENTS - 1) % 256, 'in order')
    const ends = [closed(browser), closed(far)]
    writeRaw(browser, fragments(MAX_FRAGMENTS + 1, false, true))
    const [atBrowser, atUpstream] = await Promise.all(ends)
    t.equal(atBrowser!.code, 1008, 'the browser is told its message broke the policy')
    t.same(atUpstream, { code: 1008, reason: 'too many fragments' }, 'and the upstream why its socket ends')
    t.equal(protocolCloses(await metrics(stack), 'browser'), 1, "counted as the browser leg's protocol error")
  },
)

t.test('an upstream message of more than 16,384 fragments closes both legs with 1008', async (t) => {
  const { stack, browser, far } = await live(t)
  const ends = [closed(browser), closed(far)]
  writeRaw(far, fragments(MAX_FRAGMENTS + 1, false, false))
  const [atBrowser, atUpstream] = await Promise.all(ends)
  t.same(atBrowser, { code: 1008, reason: 'too many fragments' }, 'the browser is told why its socket ends')
  t.equal(atUpstream!.code, 1008, 'and the upstream the same')
  t.equal(protocolCloses(await metrics(stack), 'upstream'), 1, "counted as the upstream leg's protocol error")
})
