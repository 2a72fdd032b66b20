import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { route } from '../../helpers/gateway.js'
import { rawUpstream } from '../../helpers/http-server.js'
import { startStack } from '../../helpers/stack.js'
import { metrics, openSocket, type Refused, wsUrl } from '../../helpers/websocket.js'

const SECRET = 'upstream-raw-secret-9d2e'

/**
 * Handshake answers node:http's parser refuses part-way, each with a
 * `Set-Cookie` in the same packet, so the parser error's `rawPacket`
 * carries it; and the llhttp code each is refused with.
 */
const malformed: Record<string, { readonly answer: string; readonly code: string }> = {
  'bad-status': {
    answer: `HTTP/1.1 1x1 Switching Protocols\r\nSet-Cookie: secret=${SECRET}\r\n\r\n`,
    code: 'HPE_INVALID_STATUS',
  },
  'bad-header': {
    answer: `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Bad: a\u0001b\r\nSet-Cookie: secret=${SECRET}\r\n\r\n`,
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  'not-http': { answer: `SSH-2.0-OpenSSH_9.6 secret=${SECRET}\r\n\r\n`, code: 'HPE_INVALID_CONSTANT' },
}

const answer = (path: string) =>
  malformed[Object.keys(malformed).find((kind) => path.endsWith(kind)) ?? 'not-http']!.answer

/**
 * A logger that is not pino and has none of the gateway's serializers, as
 * an embedder may hand `buildGateway`: each call is kept as given, so what
 * the gateway passes is what is checked, not what a serializer keeps of it.
 */
function recordingLogger(calls: unknown[][], bindings: object = {}): FastifyBaseLogger {
  const record = (...args: unknown[]) => void calls.push([bindings, ...args])
  return {
    level: 'trace',
    fatal: record,
    error: record,
    warn: record,
    info: record,
    debug: record,
    trace: record,
    silent() {},
    child: (more: object) => recordingLogger(calls, { ...bindings, ...more }),
  }
}

/** A logged value as text, with a Buffer's bytes as latin1 text and an Error's message and name. */
function asText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Error) return { ...v, name: v.name, message: v.message }
    const buffer = v as { type?: unknown; data?: unknown }
    if (buffer?.type === 'Buffer' && Array.isArray(buffer.data))
      return Buffer.from(buffer.data as number[]).toString('latin1')
    return v
  })
}

t.test(
  'a websocket upstream whose handshake answer is not HTTP is a 502 upstream_invalid_response, counted as invalid, and none of its bytes reach a log',
  async (t) => {
    const upstream = await rawUpstream(t, answer)
    const lines: string[] = []
    const calls: unknown[][] = []
    const stacks = [
      // The gateway's own logger, at its most verbose.
      await startStack(t, {
        routes: () => [route('/raw', upstream.url, { token: 'none', csrf: false, websocket: true })],
        config: { logLevel: 'trace' },
        gateway: { logStream: { write: (line: string) => void lines.push(line) } },
      }),
      // An embedder's logger, without the gateway's serializers: an error stays whole.
      await startStack(t, {
        routes: () => [route('/raw', upstream.url, { token: 'none', csrf: false, websocket: true })],
        gateway: { loggerInstance: recordingLogger(calls) },
      }),
    ]

    for (const stack of stacks) {
      for (const kind of Object.keys(malformed)) {
        const refused = (await openSocket(wsUrl(stack, `/raw/${kind}`), { origin: stack.gateway.url }).then(
          () => t.fail(`${kind}: no socket may open`),
          (e: unknown) => e,
        )) as Refused
        t.equal(refused.status, 502, `${kind}: 502`)
        t.equal(
          JSON.parse(refused.body).error,
          'upstream_invalid_response',
          `${kind}: said to be no valid answer`,
        )
        t.notMatch(refused.body, SECRET)
      }
      t.match(
        await metrics(stack),
        `gatehouse_upstream_errors_total{route="/raw",kind="invalid"} ${Object.keys(malformed).length}`,
        'counted as invalid, not unreachable',
      )
    }

    const log = lines.join('')
    t.match(log, /"failure":"invalid"/, 'the failures were logged')
    for (const { code } of Object.values(malformed))
      t.match(log, `"errorCode":"${code}"`, `${code}: logged by the parser's code`)
    t.notOk(log.includes(SECRET), "no upstream bytes in the gateway's log")
    t.notMatch(log, /secret=/, 'not even the cookie name')

    const recorded = calls.map(asText).join('\n')
    t.match(recorded, /websocket upstream error/, 'the embedder was given the errors')
    t.notOk(recorded.includes(SECRET), "no upstream bytes given to the embedder's logger")
    t.notMatch(recorded, /secret=/, 'not even the cookie name')
  },
)
