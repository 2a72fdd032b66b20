import { createServer } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { WebSocketServer } from 'ws'
import { route } from '../helpers/gateway.js'
import { type Stack, startStack } from '../helpers/stack.js'

/** An upstream that answers plain requests and accepts WebSocket upgrades. */
async function socketUpstream(t: Test): Promise<string> {
  const server = createServer((_req, res) => res.end('ok'))
  const wss = new WebSocketServer({ server })
  wss.on('connection', (socket) => socket.close(1000))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

interface Probe {
  readonly method: string
  readonly target: string
  readonly upgrade: boolean
}

/**
 * Sends one request line as the bytes given (Latin-1, as Node's parser
 * reads them) and returns the status of the answer, or 0 when the socket
 * closed without one.
 */
function send(port: number, origin: string, { method, target, upgrade }: Probe): Promise<number> {
  const headers = upgrade
    ? [
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        `Origin: ${origin}`,
      ]
    : ['Connection: close', 'x-csrf: 1']
  const head = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, '', ''].join('\r\n')
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(head, 'latin1')))
    let received = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer to ${method} ${JSON.stringify(target)} in 5 s`))
    }, 5_000)
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(received)
      resolve(status ? Number(status[1]) : 0)
    }
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
      if (received.includes('\r\n\r\n')) finish()
    })
    socket.on('close', finish)
    socket.on('error', finish)
  })
}

async function setup(t: Test) {
  const upstream = await socketUpstream(t)
  const lines: { level: number; msg: string }[] = []
  const stack: Stack = await startStack(t, {
    routes: () => [
      route('/api/live', upstream, { token: 'none', websocket: true }),
      route('/api', upstream, { token: 'optional-user' }),
      route('/public', upstream, { token: 'none', csrf: false }),
      // The catch-all frontend route: every target reaches a route's checks.
      route('/', upstream, { token: 'none', csrf: false }),
    ],
    config: { logLevel: 'debug' },
    gateway: {
      logStream: {
        write: (line) => {
          const { level, msg } = JSON.parse(line) as { level: number; msg: string }
          lines.push({ level, msg })
        },
      },
    },
  })
  const port = stack.config.server.port
  const origin = stack.config.server.publicUrl
  return { lines, probe: (p: Probe) => send(port, origin, p) }
}

/** What the red team sent, and the shapes next to them that a URL parser chokes on. */
const KNOWN: Probe[] = [
  { method: 'GET', target: '/\\evil:99999/', upgrade: false },
  { method: 'GET', target: '/api/live?#x', upgrade: true },
  { method: 'GET', target: '/api/live#x', upgrade: true },
  { method: 'GET', target: '/api/x?a=1#', upgrade: false },
  { method: 'GET', target: '//evil:99999/', upgrade: false },
  { method: 'GET', target: '//[', upgrade: false },
  { method: 'GET', target: '/\\[::1', upgrade: false },
  { method: 'GET', target: '/\\\\host/api', upgrade: true },
  { method: 'GET', target: '*', upgrade: false },
  { method: 'OPTIONS', target: '*', upgrade: false },
  { method: 'GET', target: 'http://evil:99999/api', upgrade: false },
  { method: 'GET', target: '/auth/callback/\\x:0', upgrade: false },
]

t.test('malformed request targets get a 4xx and at most a debug line', async (t) => {
  const { lines, probe } = await setup(t)
  for (const known of KNOWN) {
    lines.length = 0
    const status = await probe(known)
    t.ok(status >= 400 && status < 500, `${known.method} ${JSON.stringify(known.target)}: ${status}`)
    t.same(
      lines.filter((l) => l.level > 20),
      [],
      `${JSON.stringify(known.target)}: nothing above debug`,
    )
  }
})

t.test('no generated request target gives a 5xx, a warning or an error-level line', async (t) => {
  const { lines, probe } = await setup(t)
  // The request-target grammar (RFC 9112 §3.2, RFC 3986) and the bytes
  // around it that parsers disagree on.
  const piece = fc.constantFrom(
    '/',
    '//',
    '\\',
    ':',
    '@',
    '?',
    '#',
    '%',
    '%2e',
    '%2F',
    '%5c',
    '%zz',
    '%00',
    '.',
    '..',
    ';',
    '[',
    ']',
    '::1',
    '99999',
    'evil',
    'x',
    'http:',
    '*',
    '~',
    "!$&'()+,=",
    '"<>{}|^`',
    '\u00e9',
  )
  const probes = fc.record({
    method: fc.constantFrom('GET', 'POST', 'OPTIONS', 'DELETE'),
    target: fc
      .tuple(
        fc.constantFrom('', '/', '/api', '/api/live', '/auth', '/auth/callback', '/public'),
        fc.array(piece, { maxLength: 10 }),
      )
      .map(([prefix, parts]) => prefix + parts.join('')),
    upgrade: fc.boolean(),
  })
  let sent = 0
  await fc.assert(
    fc.asyncProperty(probes, async (p) => {
      sent++
      const status = await probe(p)
      return status < 500
    }),
    { numRuns: 400 },
  )
  const loud = lines.filter((l) => l.level >= 40)
  t.same(loud, [], `${sent} requests: nothing at warn or above`)
})
