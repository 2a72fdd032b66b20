import { createServer, type Socket } from 'node:net'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

const SECRET = 'upstream-raw-secret-4f1c'

/**
 * Answers that undici's parser refuses part-way, with a `Set-Cookie` after
 * the fault, so the parser error's raw `data` carries it.
 */
const malformed: Record<string, string> = {
  'bad-status': `HTTP/1.1 2x0 OK\r\nSet-Cookie: secret=${SECRET}\r\nContent-Length: 0\r\n\r\n`,
  'bad-header': `HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nSet-Cookie: secret=${SECRET}\r\nContent-Length: 0\r\n\r\n`,
  // A head past undici's limit (16 KiB): reached and answered, not unreachable.
  'huge-head': `HTTP/1.1 401 Unauthorized\r\nDPoP-Nonce: ${'n'.repeat(20_000)}\r\nSet-Cookie: secret=${SECRET}\r\nContent-Length: 0\r\n\r\n`,
}

/** An upstream on a raw socket: the path picks which broken answer it writes. */
async function brokenUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let head = ''
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      const path = /^\S+ (\S+)/.exec(head)?.[1] ?? ''
      const kind = Object.keys(malformed).find((k) => path.endsWith(k)) ?? 'bad-status'
      socket.end(malformed[kind]!)
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

t.test('a malformed upstream answer is refused with 502 and none of its bytes reach a log', async (t) => {
  const upstream = await brokenUpstream()
  t.teardown(() => upstream.close())
  const lines: string[] = []
  const stack = await startStack(t, {
    routes: (echo) => [
      ...defaultRoutes(echo),
      route('/api/raw', upstream.url, { token: 'none' }),
      route('/api/raw-maybe', upstream.url, { token: 'optional-user' }),
    ],
    config: { logLevel: 'trace' },
    gateway: { logStream: { write: (line: string) => void lines.push(line) } },
  })
  const base = stack.gateway.url

  // The direct forwarding path.
  for (const kind of Object.keys(malformed)) {
    const res = await apiCall(new CookieJar(), `${base}/api/raw/${kind}`)
    t.equal(res.status, 502, `${kind}: 502 on the direct path`)
    t.equal(res.json().error, 'upstream_invalid_response', `${kind}: said to be no valid answer`)
    t.notMatch(res.text, SECRET)
  }

  // Through Fastify's send: a cookie whose session is gone is cleared on
  // the answer, which needs Fastify's onSend hooks.
  for (const kind of Object.keys(malformed)) {
    const { jar } = await login(base)
    const store = stack.gateway.app.gatehouse.stores.sessions
    for (const id of await store.idsBySub('alice')) await store.delete(id)
    const res = await apiCall(jar, `${base}/api/raw-maybe/${kind}`)
    t.equal(res.status, 502, `${kind}: 502 through Fastify's send`)
    t.match(
      res.headers.getSetCookie().join('\n'),
      /gatehouse=;/,
      'that path was taken: the cookie is cleared',
    )
    t.notMatch(res.text, SECRET)
  }

  // Whatever logs such an error whole does so through the `err` serializer.
  const whole = Object.assign(new Error('Response does not match the HTTP/1.1 protocol'), {
    name: 'HTTPParserError',
    code: 'HPE_INVALID_STATUS',
    data: malformed['bad-status'],
  })
  stack.gateway.app.log.warn({ err: whole }, 'upstream error logged whole')

  const log = lines.join('')
  t.match(log, /upstream request failed/, 'the failures were logged')
  t.match(log, /"upstreamError":"HTTPParserError"/, 'by the error name')
  t.match(
    log,
    /"type":"HTTPParserError","errorCode":"HPE_INVALID_STATUS"/,
    'an error logged whole, by name and code',
  )
  t.notOk(log.includes(SECRET), 'no upstream bytes in any log line')
  t.notMatch(log, /secret=/, 'not even the cookie name')
})
