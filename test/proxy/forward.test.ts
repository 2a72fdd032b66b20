import { createHash } from 'node:crypto'
import { request, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { endSessionsOf, startScriptedStack } from '../helpers/scripted-stack.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/** Writes `chunk` `count` times, honouring the socket's backpressure, then ends the answer. */
function writeChunks(res: ServerResponse, chunk: Buffer, count: number): void {
  let sent = 0
  const more = () => {
    while (sent < count) {
      sent++
      if (!res.write(chunk)) return void res.once('drain', more)
    }
    res.end()
  }
  more()
}

async function setup(t: Test) {
  const started = await startScriptedStack(t, (upstream) => [
    route('/api/pub', upstream, { token: 'none', rewritePath: '/v1' }),
    route('/api/maybe', upstream, { token: 'optional-user' }),
  ])
  return started
}

t.test('hop-by-hop request headers, and those the client names in Connection, stay here', async (t) => {
  const { upstream, base } = await setup(t)
  const res = await rawCall(`${base}/api/pub/items?x=1`, {
    connection: 'keep-alive, x-hop-secret',
    'x-hop-secret': 'strip me',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    'proxy-connection': 'keep-alive',
    'x-passes': 'yes',
  })
  t.equal(res.status, 200)
  const sent = upstream.seen.at(-1)!
  t.equal(sent.url, '/v1/items?x=1', 'prefix rewritten, query kept')
  t.equal(sent.headers['x-passes'], 'yes')
  for (const name of ['x-hop-secret', 'keep-alive', 'te', 'proxy-connection'])
    t.equal(sent.headers[name], undefined, `${name} not forwarded`)
  t.equal(sent.headers.host, new URL(upstream.url).host, "Host is the upstream's")
  t.equal(sent.headers['x-forwarded-host'], new URL(base).host)
})

t.test('the answer passes through minus hop-by-hop headers; repeated headers stay repeated', async (t) => {
  const { upstream, base } = await setup(t)
  upstream.answer((res) => {
    res.writeHead(201, [
      ['connection', 'x-upstream-hop'],
      ['x-upstream-hop', 'strip me'],
      ['keep-alive', 'timeout=1'],
      ['set-cookie', 'a=1; Path=/'],
      ['set-cookie', 'b=2; Path=/'],
      ['x-kept', 'yes'],
      ['content-type', 'text/plain'],
    ])
    res.end('made')
  })
  const res = await rawCall(`${base}/api/pub/things`, {})
  t.equal(res.status, 201)
  t.equal(res.body.toString(), 'made')
  t.equal(res.headers['x-kept'], 'yes')
  t.same(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'])
  t.equal(res.headers['x-upstream-hop'], undefined)
  t.not(res.headers['keep-alive'], 'timeout=1', "the upstream's keep-alive is not ours to announce")
})

t.test("the upstream's own redirects are mapped back under the route's prefix", async (t) => {
  const { upstream, base } = await setup(t)
  const cases: [string, string][] = [
    ['/v1/items/2', '/api/pub/items/2'],
    ['https://elsewhere.example/v1/x', 'https://elsewhere.example/v1/x'],
    ['//cdn.example/v1/x', '//cdn.example/v1/x'],
    ['/other/x', '/other/x'],
  ]
  for (const [from, to] of cases) {
    upstream.answer((res) => {
      res.writeHead(302, { location: from })
      res.end()
    })
    const res = await rawCall(`${base}/api/pub/go`, {})
    t.equal(res.status, 302)
    t.equal(res.headers.location, to, from)
  }
})

t.test('a large answer streams through whole', async (t) => {
  const { upstream, base } = await setup(t)
  const chunk = Buffer.alloc(64 * 1024, 7)
  const chunks = 256 // 16 MiB: far past every socket buffer, so backpressure engages
  const expected = createHash('sha256')
  for (let i = 0; i < chunks; i++) expected.update(chunk)
  upstream.answer((res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    writeChunks(res, chunk, chunks)
  })
  const res = await rawCall(`${base}/api/pub/big`, {})
  t.equal(res.status, 200)
  t.equal(res.body.length, chunk.length * chunks)
  t.equal(createHash('sha256').update(res.body).digest('hex'), expected.digest('hex'))
})

t.test('a client that leaves mid-answer frees the upstream request', async (t) => {
  const { upstream, base } = await setup(t)
  const upstreamClosed = new Promise<void>((resolve) => {
    upstream.answer((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first part')
      // Never ends on its own: only the gateway giving up closes it.
      res.on('close', () => resolve())
    })
  })
  await new Promise<void>((resolve, reject) => {
    const req = request(`${base}/api/pub/stream`, { headers: { 'x-csrf': '1' } }, (res) => {
      res.once('data', () => {
        req.destroy()
        resolve()
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)))
    req.end()
  })
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    upstreamClosed,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('the upstream request was left open')), 5_000)
    }),
  ])
  clearTimeout(timer)
  t.pass('the upstream saw its request closed')
})

t.test('an upstream dying mid-answer cuts the answer short; the gateway carries on', async (t) => {
  const { upstream, base } = await setup(t)
  upstream.answer((res, url) => {
    if (url.endsWith('/ok')) return res.end('fine')
    res.writeHead(200, { 'content-length': '1000' })
    res.write('only ten b')
    res.socket?.destroy()
  })
  const cut = await rawCall(`${base}/api/pub/dies`, {}).then(
    (res) => res.body.length,
    () => 'errored',
  )
  t.not(cut, 1000, 'the client never sees a complete-looking answer')
  const after = await rawCall(`${base}/api/pub/ok`, {})
  t.equal(after.status, 200)
  t.equal(after.body.toString(), 'fine')
})

t.test('an answer that must clear the session cookie still does', async (t) => {
  const { stack, base } = await setup(t)
  const { jar } = await login(base)
  await endSessionsOf(stack, jar)

  const res = await apiCall(jar, `${base}/api/maybe/x`)
  t.equal(res.status, 200, 'an optional-user route still answers, without a token')
  const cleared = res.headers.getSetCookie().find((line) => line.startsWith('gatehouse='))
  t.match(cleared, /Max-Age=0|Expires=Thu, 01 Jan 1970/i, 'and tells the browser to drop the dead cookie')
})

t.test(
  'through Fastify send, as when a cookie must be cleared, the answer streams the same way',
  async (t) => {
    const { upstream, stack, base } = await setup(t)
    const { jar } = await login(base)
    const cookie = jar.header(`${base}/api/maybe/x`)!
    await endSessionsOf(stack, jar)
    const clears = (res: { headers: Record<string, unknown> }) =>
      /gatehouse=;/.test(String(res.headers['set-cookie']))

    const chunk = Buffer.alloc(64 * 1024, 9)
    const chunks = 256 // 16 MiB: past every socket buffer, so the Readable's backpressure engages
    const expected = createHash('sha256')
    for (let i = 0; i < chunks; i++) expected.update(chunk)
    upstream.answer((res) => {
      res.writeHead(200, [
        ['content-type', 'application/octet-stream'],
        ['set-cookie', 'app=1; Path=/'],
      ])
      writeChunks(res, chunk, chunks)
    })
    const big = await rawCall(`${base}/api/maybe/big`, { cookie })
    t.equal(big.status, 200)
    t.ok(clears(big), 'the answer went through Fastify: it clears the dead cookie')
    t.match(String(big.headers['set-cookie']), /app=1; Path=\//, "and keeps the upstream's own cookie")
    t.equal(createHash('sha256').update(big.body).digest('hex'), expected.digest('hex'), 'whole')

    upstream.answer((res) => {
      res.writeHead(200, { 'content-length': '1000' })
      res.write('only ten b')
      res.socket?.destroy()
    })
    const cut = await rawCall(`${base}/api/maybe/dies`, { cookie }).then(
      (res) => res.body.length,
      () => 'errored',
    )
    t.not(cut, 1000, 'a death mid-answer is never a complete-looking answer')

    upstream.answer((res) => {
      res.writeHead(600)
      res.end()
    })
    const odd = await rawCall(`${base}/api/maybe/odd`, { cookie })
    t.equal(odd.status, 502, 'a status Fastify cannot send is a bad gateway')
    t.ok(clears(odd))
  },
)
