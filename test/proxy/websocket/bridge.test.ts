import { EventEmitter, once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { closeRedisClient, createRedisClient, whenReady } from '../../../src/redis/connection.js'
import type { CookieJar } from '../../helpers/cookie-jar.js'
import { route, TestClock } from '../../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../../helpers/login.js'
import { REFUSED_URL } from '../../helpers/ports.js'
import { startRedis, type TestRedis } from '../../helpers/redis.js'
import { endSessionsOf } from '../../helpers/scripted-stack.js'
import { type Stack, startStack } from '../../helpers/stack.js'
import { within } from '../../helpers/within.js'

interface Seen {
  readonly url: string | undefined
  readonly authorization: string | undefined
  readonly cookie: string | undefined
  /** The `Sec-WebSocket-Protocol` offered to the upstream. */
  readonly offered: string | undefined
}

interface UpstreamOptions {
  /** The subprotocol the upstream selects from those offered (ws's `handleProtocols`); by default the first. */
  readonly select?: (offered: Set<string>) => string | false
  /** The upstream answers every upgrade with 401. */
  readonly refuse?: boolean
}

/**
 * A real WebSocket upstream: each socket's first message is what its
 * upgrade carried; a plain GET answers the same as JSON.
 */
async function wsUpstream({ select, refuse }: UpstreamOptions = {}) {
  const upgrades: IncomingHttpHeaders[] = []
  const closes: number[] = []
  const closing = new EventEmitter()
  const pings: string[] = []
  const seen = (url: string | undefined, headers: IncomingHttpHeaders): Seen => ({
    url,
    authorization: headers.authorization,
    cookie: headers.cookie,
    offered: headers['sec-websocket-protocol'],
  })
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(seen(req.url, req.headers)))
  })
  const wss = new WebSocketServer({
    server,
    ...(select && { handleProtocols: select }),
    ...(refuse && {
      verifyClient: (info: { req: { headers: IncomingHttpHeaders } }) => {
        upgrades.push(info.req.headers)
        return false
      },
    }),
  })
  wss.on('connection', (socket, req) => {
    upgrades.push(req.headers)
    socket.send(JSON.stringify(seen(req.url, req.headers)))
    socket.on('message', (data) => socket.send(`echo ${data}`))
    socket.on('close', (code) => {
      closes.push(code)
      closing.emit('close')
    })
    socket.on('ping', (data) => pings.push(String(data)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    upgrades,
    closes,
    /** The codes of the sockets the upstream has seen close, once `count` have (bounded). */
    closed: (count: number): Promise<number[]> =>
      within(
        (async () => {
          while (closes.length < count) await once(closing, 'close')
          return closes
        })(),
        `the upstream's ${count} close(s)`,
        BOUND,
      ),
    pings,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const RECHECK = 100 // ms
/** Longest any handshake or close may take here before the test fails. */
const BOUND = 5_000 // ms

async function wsStack(
  t: Test,
  {
    clock,
    backchannelLogout,
    upstream: upstreamOptions,
    redis,
    recheck = RECHECK,
  }: {
    clock?: TestClock
    backchannelLogout?: boolean
    upstream?: UpstreamOptions
    redis?: TestRedis
    /** The watch's re-check interval, ms. */
    recheck?: number
  } = {},
) {
  const upstream = await wsUpstream(upstreamOptions)
  const stack = await startStack(t, {
    ...(backchannelLogout && { backchannelLogout }),
    ...(redis && { config: { store: redis.url, keyPrefix: `${redis.prefix}ws:` } }),
    routes: () => [
      route('/live', upstream.url, { websocket: true }),
      route('/plain', upstream.url),
      route('/service', upstream.url, { token: 'client', scopes: ['reports.read'], websocket: true }),
    ],
    gateway: { websocketRecheck: recheck, ...(clock && { now: clock.now }) },
  })
  // The stack closes itself at teardown; the gateway first, so its sockets go before the upstream.
  t.teardown(async () => {
    await stack.close()
    await upstream.close()
  })
  return { stack, upstream }
}

interface Opened {
  readonly socket: WebSocket
  readonly first: Seen
}

/** Opens a socket through the gateway as a browser would: its cookies and an Origin. */
function open(url: string, headers: Record<string, string>, protocols: string[] = []): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers, handshakeTimeout: BOUND })
    socket.once('message', (data) => resolve({ socket, first: JSON.parse(String(data)) as Seen }))
    socket.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk
      })
      res.on('end', () => reject(Object.assign(new Error('refused'), { status: res.statusCode, body })))
    })
    socket.once('error', reject)
    socket.once('close', (code, reason) =>
      reject(Object.assign(new Error(`closed before the first message: ${code} ${reason}`), { code })),
    )
  })
}

/** The socket's close, or a rejection once BOUND passes without one. */
function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${BOUND} ms`)), BOUND)
    socket.once('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ code, reason: String(reason) })
    })
  })
}

function browserHeaders(
  stack: Stack,
  jar: CookieJar | undefined,
  extra: Record<string, string> = {},
): Record<string, string> {
  const cookie = jar?.header(`${stack.gateway.url}/live`)
  return { origin: stack.gateway.url, ...(cookie ? { cookie: `${cookie}; theme=dark` } : {}), ...extra }
}

const wsUrl = (stack: Stack, path: string) => `${stack.gateway.url.replace(/^http/, 'ws')}${path}`

t.test(
  'an upgrade on a websocket route reaches the upstream with the user token and none of our cookies',
  async (t) => {
    const { stack, upstream } = await wsStack(t)
    const { jar } = await login(stack.gateway.url)
    const { socket, first } = await open(wsUrl(stack, '/live/feed?x=1'), browserHeaders(stack, jar))
    t.teardown(() => socket.terminate())
    const http = (await apiCall(jar, `${stack.gateway.url}/live/feed`)).json<Seen>()
    t.match(first.authorization, /^Bearer \S+$/)
    t.equal(first.authorization, http.authorization, 'the same token an HTTP call on the route gets')
    t.equal(first.cookie, 'theme=dark', 'the session cookie is stripped; other cookies pass')
    t.equal(first.url, '/live/feed?x=1')
    socket.send('ping')
    const echo = await new Promise<string>((resolve) =>
      socket.once('message', (data) => resolve(String(data))),
    )
    t.equal(echo, 'echo ping', 'messages flow both ways')
    socket.ping('are you there')
    const [pong] = (await once(socket, 'pong')) as [Buffer]
    t.equal(String(pong), 'are you there')
    t.same(upstream.pings, ['are you there'], 'pings travel end to end: the upstream answered')
  },
)

t.test('a client route upgrades with the client token, and only for a signed-in user', async (t) => {
  const { stack, upstream } = await wsStack(t)
  const refused = await open(wsUrl(stack, '/service/feed'), browserHeaders(stack, undefined)).catch((e) => e)
  t.equal(refused.status, 401)
  t.equal(upstream.upgrades.length, 0)
  const { jar } = await login(stack.gateway.url)
  const { socket, first } = await open(wsUrl(stack, '/service/feed'), browserHeaders(stack, jar))
  t.teardown(() => socket.terminate())
  const user = (await apiCall(jar, `${stack.gateway.url}/live/feed`)).json<Seen>()
  t.match(first.authorization, /^Bearer \S+$/)
  t.not(first.authorization, user.authorization, "the gateway's own token, not the user's")
  t.equal(first.cookie, 'theme=dark')
})

t.test(
  'an upgrade from another origin, or with no Origin, is refused before the upstream sees it',
  async (t) => {
    const { stack, upstream } = await wsStack(t)
    const { jar } = await login(stack.gateway.url)
    for (const headers of [
      browserHeaders(stack, jar, { origin: 'https://evil.example' }),
      browserHeaders(stack, jar, { 'sec-fetch-site': 'cross-site' }),
      { cookie: browserHeaders(stack, jar).cookie! },
    ]) {
      const refused = await open(wsUrl(stack, '/live/feed'), headers).catch((e) => e)
      t.equal(refused.status, 403, `Origin ${headers.origin}, Sec-Fetch-Site ${headers['sec-fetch-site']}`)
      t.match(JSON.parse(refused.body), { error: 'cross_site_request' })
    }
    t.equal(upstream.upgrades.length, 0)
  },
)

t.test(
  'an upgrade without a session is a 401, and a dot-segment path a 400, before the upstream sees it',
  async (t) => {
    const { stack, upstream } = await wsStack(t)
    const anonymous = await open(wsUrl(stack, '/live/feed'), browserHeaders(stack, undefined)).catch((e) => e)
    t.equal(anonymous.status, 401)
    t.match(JSON.parse(anonymous.body), { error: 'unauthenticated' })
    const { jar } = await login(stack.gateway.url)
    const traversal = await open(wsUrl(stack, '/live/..;/admin'), browserHeaders(stack, jar)).catch((e) => e)
    t.equal(traversal.status, 400)
    t.match(JSON.parse(traversal.body), { error: 'invalid_path' })
    t.equal(upstream.upgrades.length, 0)
  },
)

t.test('an upgrade with two Host headers is a 400 before the upstream sees it', async (t) => {
  const { stack, upstream } = await wsStack(t)
  const { jar } = await login(stack.gateway.url)
  const { port } = new URL(stack.gateway.url)
  const socket = connect(Number(port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write(
    [
      'GET /live/feed HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Host: evil.example',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}`,
      `Origin: ${stack.gateway.url}`,
      `Cookie: ${jar.header(`${stack.gateway.url}/live`)}`,
      '',
      '',
    ].join('\r\n'),
  )
  const [head] = (await once(socket, 'data')) as [Buffer]
  t.match(String(head), /^HTTP\/1\.1 400 /)
  t.match(String(head), /duplicate_host/)
  t.equal(upstream.upgrades.length, 0)
})

t.test('a route without websocket: true refuses the upgrade and never forwards it', async (t) => {
  const { stack, upstream } = await wsStack(t)
  const { jar } = await login(stack.gateway.url)
  const refused = await open(
    wsUrl(stack, '/plain/feed'),
    browserHeaders(stack, jar, { 'x-csrf': '1' }),
  ).catch((e) => e)
  t.equal(refused.status, 400)
  t.match(JSON.parse(refused.body), { error: 'websocket_not_enabled' })
  t.equal(upstream.upgrades.length, 0)
  const plain = await apiCall(jar, `${stack.gateway.url}/plain/feed`)
  t.equal(plain.status, 200, 'plain calls on the route still work')
})

/** A signed-in user's socket on /live, and the close it will see. */
async function liveSocket(t: Test, options: Parameters<typeof wsStack>[1] = {}) {
  const { stack, upstream } = await wsStack(t, options)
  const { jar } = await login(stack.gateway.url)
  const { socket } = await open(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => socket.terminate())
  return { stack, upstream, jar, end: closed(socket) }
}

t.test('logging out closes the open socket with 4401 within the re-check bound', async (t) => {
  const { stack, upstream, jar, end } = await liveSocket(t)
  const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
  const started = Date.now()
  t.equal((await jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)).status, 200)
  const { code, reason } = await end
  t.equal(code, 4401)
  t.equal(reason, 'session ended')
  t.ok(Date.now() - started < RECHECK * 20, `closed after ${Date.now() - started} ms`)
  t.same(await upstream.closed(1), [4401], 'the upstream is told why, too')
})

/** A re-check no test outlives: a socket closed within BOUND was closed by the store's hint. */
const NEVER = 600_000 // ms

t.test('a logout closes the socket at once, not at the next re-check', async (t) => {
  const { stack, upstream, jar, end } = await liveSocket(t, { recheck: NEVER })
  const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
  t.equal((await jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)).status, 200)
  t.same(await end, { code: 4401, reason: 'session ended' })
  t.same(await upstream.closed(1), [4401], 'the upstream is told why, too')
})

t.test(
  'with sessions in Redis, a session ended on another instance closes its sockets here at once',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const { stack, jar, end } = await liveSocket(t, { redis, recheck: NEVER })
    const other = await open(wsUrl(stack, '/service/feed'), browserHeaders(stack, jar))
    t.teardown(() => other.socket.terminate())
    const { sub } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ sub: string }>()
    const [id] = await stack.gateway.app.gatehouse.stores.sessions.idsBySub(sub)
    // Another instance's logout, as Redis sees it: the record deleted by another client.
    const client = createRedisClient(redis.url)
    t.teardown(() => closeRedisClient(client))
    await whenReady(client)
    const [key, ...more] = await client.keys(`${redis.prefix}ws:*s:{${id}}`)
    t.same(more, [], 'one record')
    t.equal(await client.del(key!), 1)
    for (const { code } of await Promise.all([end, closed(other.socket)])) t.equal(code, 4401)
  },
)

t.test(
  'a session deleted behind the sockets (logout everywhere, another instance) closes them',
  async (t) => {
    const { stack, jar, end } = await liveSocket(t)
    const client = await open(wsUrl(stack, '/service/feed'), browserHeaders(stack, jar))
    t.teardown(() => client.socket.terminate())
    const ends = [end, closed(client.socket)]
    await endSessionsOf(stack, jar)
    for (const { code } of await Promise.all(ends)) t.equal(code, 4401)
  },
)

t.test('a back-channel logout from the IdP closes the socket', async (t) => {
  const { stack, end } = await liveSocket(t, { backchannelLogout: true })
  t.equal((await stack.idp.endSession()).delivered, 1)
  t.equal((await end).code, 4401)
})

t.test(
  'with sessions sealed in Redis, the watch refreshes with the key of the upgrade, and a back-channel logout closes it',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const clock = new TestClock()
    const { stack, end } = await liveSocket(t, { clock, backchannelLogout: true, redis })
    const refreshed = within(
      (async () => {
        while (stack.idp.stats.refreshGrants === 0) await once(stack.idp.provider, 'grant.success')
      })(),
      'a refresh grant at the IdP',
      BOUND,
    )
    clock.advance(61_000)
    await refreshed
    t.equal(stack.idp.stats.refreshGrants, 1, 'the watch refreshed the expired token, no cookie in sight')
    t.equal((await stack.idp.endSession()).delivered, 1)
    t.equal((await end).code, 4401, 'the logout found the session by its hashed sid and closed the socket')
  },
)

t.test('an idle session that expires closes its socket with 4401', async (t) => {
  const clock = new TestClock()
  const { stack, end } = await liveSocket(t, { clock })
  clock.advance(stack.config.session.idleTimeout + 1_000)
  t.equal((await end).code, 4401)
})

t.test(
  'a token that expires and cannot be refreshed closes the socket: 1013 while the IdP is down',
  async (t) => {
    const clock = new TestClock()
    const { stack, jar, end } = await liveSocket(t, { clock })
    stack.idp.setDown('503')
    clock.advance(61_000)
    const { code, reason } = await end
    t.equal(code, 1013)
    t.equal(reason, 'token unavailable')
    const after = await apiCall(jar, `${stack.gateway.url}/auth/user`)
    t.equal(after.status, 200, 'the session itself stays for the next try')
  },
)

t.test(
  'a refresh the IdP refuses (grant revoked) ends the session and closes the socket with 4401',
  async (t) => {
    const clock = new TestClock()
    const { stack, jar, end } = await liveSocket(t, { clock })
    const { sub } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ sub: string }>()
    // The IdP ends its session and revokes the grant, but tells no one.
    t.equal((await stack.idp.endSession(sub)).sessions, 1)
    clock.advance(61_000)
    t.equal((await end).code, 4401)
    t.equal(stack.idp.stats.grantErrors, 1, 'the socket asked for one refresh and was refused')
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 401)
  },
)

/**
 * Sends an upgrade to /live by hand, with `headers` over a valid
 * handshake's (undefined drops one), and reads the first of the answer:
 * for what no WebSocket client will send, or will accept. The socket is
 * the caller's to destroy.
 */
async function handUpgrade(stack: Stack, jar: CookieJar, headers: Record<string, string | undefined>) {
  const { port } = new URL(stack.gateway.url)
  const all: Record<string, string | undefined> = {
    Host: `127.0.0.1:${port}`,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': Buffer.from('0123456789abcdef').toString('base64'),
    Origin: stack.gateway.url,
    Cookie: jar.header(`${stack.gateway.url}/live`),
    ...headers,
  }
  const lines = Object.entries(all).flatMap(([name, value]) =>
    value === undefined ? [] : [`${name}: ${value}`],
  )
  const socket = connect(Number(port), '127.0.0.1')
  socket.write(['GET /live/feed HTTP/1.1', ...lines, '', ''].join('\r\n'))
  const [data] = (await once(socket, 'data')) as [Buffer]
  return { socket, answer: String(data) }
}

t.test(
  'the browser is told the subprotocol the upstream selected from the full list the browser offered',
  async (t) => {
    // The upstream speaks v1 only: a gateway that picked the browser's first (v2) would lie.
    const { stack, upstream } = await wsStack(t, {
      upstream: { select: (offered) => (offered.has('v1') ? 'v1' : false) },
    })
    const { jar } = await login(stack.gateway.url)
    const { socket, first } = await open(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar), ['v2', 'v1'])
    t.teardown(() => socket.terminate())
    t.equal(first.offered, 'v2, v1', 'the upstream was offered exactly what the browser offered')
    t.equal(socket.protocol, 'v1', "the browser sees the upstream's choice")
    socket.send('hello')
    const echo = await new Promise<string>((resolve) =>
      socket.once('message', (data) => resolve(String(data))),
    )
    t.equal(echo, 'echo hello')
    t.equal(upstream.upgrades.length, 1, 'one handshake with the upstream')
  },
)

t.test('an upstream that selects no subprotocol is passed on as none', async (t) => {
  // RFC 6455 §4.1 leaves it to the client to go on or fail: browsers (and
  // ws) fail, as they would talking to the upstream directly.
  const { stack, upstream } = await wsStack(t, { upstream: { select: () => false } })
  const { jar } = await login(stack.gateway.url)
  const { socket, answer } = await handUpgrade(stack, jar, { 'Sec-WebSocket-Protocol': 'v2, v1' })
  socket.destroy()
  const head = answer.split('\r\n\r\n')[0]
  t.match(head, /^HTTP\/1\.1 101 /)
  t.notMatch(head, /sec-websocket-protocol/i, 'no subprotocol, as the upstream said')
  t.equal(upstream.upgrades[0]?.['sec-websocket-protocol'], 'v2, v1')
})

t.test('a browser that offers no subprotocol offers none to the upstream and gets none', async (t) => {
  const { stack } = await wsStack(t)
  const { jar } = await login(stack.gateway.url)
  const { socket, first } = await open(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => socket.terminate())
  t.equal(first.offered, undefined)
  t.equal(socket.protocol, '')
})

t.test(
  'an upstream that selects a subprotocol the browser did not offer, or refuses the upgrade, is a 502',
  async (t) => {
    const picky = await wsStack(t, { upstream: { select: () => 'v9' } })
    const { jar } = await login(picky.stack.gateway.url)
    const offBook = await open(wsUrl(picky.stack, '/live/feed'), browserHeaders(picky.stack, jar), [
      'v2',
      'v1',
    ]).catch((e) => e)
    t.equal(offBook.status, 502)
    t.match(JSON.parse(offBook.body), { error: 'upstream_upgrade_refused' })
    t.equal(picky.upstream.upgrades.length, 1, 'the upstream was asked once')

    const refusing = await wsStack(t, { upstream: { refuse: true } })
    const other = await login(refusing.stack.gateway.url)
    const refused = await open(
      wsUrl(refusing.stack, '/live/feed'),
      browserHeaders(refusing.stack, other.jar),
    ).catch((e) => e)
    t.equal(refused.status, 502)
    t.match(JSON.parse(refused.body), { error: 'upstream_upgrade_refused' })
  },
)

t.test('a malformed handshake or subprotocol list is a 400 before the upstream sees it', async (t) => {
  const { stack, upstream } = await wsStack(t)
  const { jar } = await login(stack.gateway.url)
  for (const headers of [
    { 'Sec-WebSocket-Protocol': 'v1, v1' },
    { 'Sec-WebSocket-Protocol': 'v1 v2' },
    { 'Sec-WebSocket-Protocol': 'v1,,v2' },
    { 'Sec-WebSocket-Protocol': '' },
    { 'Sec-WebSocket-Version': '12' },
    { 'Sec-WebSocket-Key': undefined },
    { Upgrade: 'h2c' },
  ]) {
    const { socket, answer } = await handUpgrade(stack, jar, headers)
    socket.destroy()
    t.match(answer, /^HTTP\/1\.1 400 /, JSON.stringify(headers))
    t.match(answer, /invalid_upgrade/)
  }
  t.equal(upstream.upgrades.length, 0)
})

t.test(
  'a close without a code reaches the upstream without one; an upstream that vanishes drops the socket',
  async (t) => {
    const first = await liveSocket(t)
    const { socket: quiet } = await open(
      wsUrl(first.stack, '/live/feed'),
      browserHeaders(first.stack, first.jar),
    )
    quiet.close()
    t.same(await first.upstream.closed(1), [1005], 'no status code, as the browser sent none')
    await first.upstream.close()
    t.equal((await first.end).code, 1006)
  },
)

/** A TCP server that accepts connections and never answers: an upstream stuck in its handshake. */
async function silentUpstream(t: Test) {
  const connections: Socket[] = []
  let drop!: () => void
  const dropped = new Promise<void>((resolve) => {
    drop = resolve
  })
  const server = createNetServer((socket) => {
    connections.push(socket)
    socket.once('close', () => drop())
    // Read, so the gateway's hang-up is seen (a paused socket never sees its end).
    socket.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of connections) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    /** The first connection's close, or a rejection past BOUND. */
    dropped: () => within(dropped, 'the first connection to the silent upstream closed', BOUND),
  }
}

t.test(
  'an upstream that is down is a 502 and one stuck in its handshake a 504: no socket is opened',
  async (t) => {
    const silent = await silentUpstream(t)
    const dead = REFUSED_URL
    const stack = await startStack(t, {
      routes: () => [
        route('/live', dead, { websocket: true }),
        route('/stuck', silent.url, { websocket: true, timeout: 300 }),
      ],
    })
    const { jar } = await login(stack.gateway.url)
    const down = await open(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar)).catch((e) => e)
    t.equal(down.status, 502)
    t.match(JSON.parse(down.body), { error: 'upstream_unreachable' })
    const stuck = await open(wsUrl(stack, '/stuck/feed'), browserHeaders(stack, jar)).catch((e) => e)
    t.equal(stuck.status, 504)
    t.match(JSON.parse(stuck.body), { error: 'upstream_timeout' })
    await silent.dropped()
    t.equal(silent.connections[0]?.destroyed, true, 'the stuck handshake is dropped')
    const metrics = await stack.gateway.app.gatehouse.metrics.registry.metrics()
    t.match(metrics, 'gatehouse_upstream_errors_total{route="/live",kind="unreachable"} 1')
    t.match(metrics, 'gatehouse_upstream_errors_total{route="/stuck",kind="timeout"} 1')
  },
)

t.test('closing the gateway closes open sockets with 1001, and the upstream hears the same', async (t) => {
  const { stack, upstream, end } = await liveSocket(t)
  await stack.gateway.close()
  const { code, reason } = await end
  t.equal(code, 1001)
  t.equal(reason, 'gateway shutting down')
  t.same(await upstream.closed(1), [1001])
})
