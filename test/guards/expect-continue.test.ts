import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { endSessionsOf, startScriptedStack } from '../helpers/scripted-stack.js'
import { type RawResponse, rawCall, readResponse } from '../helpers/scripted-upstream.js'

const BODY = randomBytes(200 * 1024)
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

/** A POST as curl sends a large one: headers with `Expect: 100-continue`, the body only after the 100. */
function expectContinue(url: string, body: Buffer, headers: Record<string, string> = {}) {
  return new Promise<RawResponse & { continued: boolean }>((resolve, reject) => {
    let continued = false
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'x-csrf': '1',
          'content-type': 'application/octet-stream',
          'content-length': String(body.length),
          expect: '100-continue',
          ...headers,
        },
      },
      (res) => readResponse(res).then((answer) => resolve({ ...answer, continued }), reject),
    )
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.on('error', reject)
  })
}

async function setup(t: Test) {
  const started = await startScriptedStack(t, (upstream) => [
    route('/api/user', upstream),
    route('/api/maybe', upstream, { token: 'optional-user' }),
    route('/api/public', upstream, { token: 'none', rewritePath: '/v1', bodyLimit: 256 * 1024 }),
  ])
  started.upstream.answer((res, url) => {
    res.writeHead(201, { 'content-type': 'text/plain' })
    res.end(`stored ${url}`)
  })
  return started
}

t.test('a 200 KiB upload with Expect: 100-continue arrives whole on the direct path', async (t) => {
  const { upstream, base } = await setup(t)
  const res = await expectContinue(`${base}/api/public/upload`, BODY)
  t.equal(res.status, 201, "the client gets the upstream's answer, not 502")
  t.equal(res.body.toString(), 'stored /v1/upload')
  t.ok(res.continued, 'the client was told to go on')
  const seen = upstream.seen.at(-1)!
  t.equal(seen.body.length, BODY.length)
  t.equal(sha(seen.body), sha(BODY), 'byte for byte')
  t.equal(seen.headers.expect, undefined, 'Expect is answered here, never forwarded')
})

t.test('with a session and on answers sent through Fastify as well', async (t) => {
  const { upstream, stack, base } = await setup(t)
  const { jar } = await login(base)
  const cookie = jar.header(`${base}/api/user/x`)!
  const direct = await expectContinue(`${base}/api/user/upload`, BODY, { cookie })
  t.equal(direct.status, 201)
  t.equal(sha(upstream.seen.at(-1)!.body), sha(BODY))
  t.match(upstream.seen.at(-1)!.headers.authorization, /^Bearer /)

  // A dead session makes the answer clear the cookie: that answer goes through Fastify's send.
  await endSessionsOf(stack, jar)
  const fallback = await expectContinue(`${base}/api/maybe/upload`, BODY, { cookie })
  t.equal(fallback.status, 201, 'not 502')
  t.match(String(fallback.headers['set-cookie']), /gatehouse=;/, 'this answer did take the fallback path')
  t.equal(sha(upstream.seen.at(-1)!.body), sha(BODY))
  t.equal(upstream.seen.at(-1)!.headers.expect, undefined)
})

t.test('a declared body over the route limit is refused with 413, never 502', async (t) => {
  const { upstream, base } = await setup(t)
  const before = upstream.seen.length
  const res = await expectContinue(`${base}/api/public/upload`, Buffer.alloc(300 * 1024, 1))
  t.equal(res.status, 413)
  t.equal(JSON.parse(res.body.toString()).error, 'payload_too_large')
  t.notOk(res.continued, 'answered from the headers alone: the body never left the client')
  t.equal(upstream.seen.length, before, 'the upstream was never called')
})

t.test('a request the guard refuses is answered before the body moves', async (t) => {
  const { upstream, base } = await setup(t)
  const unauthenticated = await expectContinue(`${base}/api/user/upload`, BODY)
  t.equal(unauthenticated.status, 401)
  t.notOk(unauthenticated.continued, 'no 100 for a caller without a session')
  const forged = await expectContinue(`${base}/api/public/upload`, BODY, { 'x-csrf': '0' })
  t.equal(forged.status, 403)
  t.notOk(forged.continued)
  t.equal(upstream.seen.length, 0)
})

t.test('endpoints that read a body themselves still ask for it', async (t) => {
  const { base } = await setup(t)
  const res = await expectContinue(`${base}/auth/backchannel-logout`, Buffer.from('logout_token=not-a-jwt'), {
    'content-type': 'application/x-www-form-urlencoded',
  })
  t.ok(res.continued, 'the 100 went out before the body was read')
  t.equal(res.status, 400, 'and the endpoint judged the body it received')
})

t.test('any other expectation is refused with 417 before it reaches the upstream', async (t) => {
  const { upstream, base } = await setup(t)
  const before = upstream.seen.length
  const res = await rawCall(`${base}/api/public/upload`, { expect: 'magic' })
  t.equal(res.status, 417)
  t.equal(upstream.seen.length, before)
})

t.test('a text/plain upload with Expect: 100-continue is asked for and arrives whole', async (t) => {
  const { upstream, base } = await setup(t)
  const text = Buffer.from('x'.repeat(100 * 1024))
  const res = await expectContinue(`${base}/api/public/notes`, text, { 'content-type': 'text/plain' })
  t.equal(res.status, 201)
  t.ok(res.continued, 'the client was told to go on')
  t.equal(sha(upstream.seen.at(-1)!.body), sha(text))
})

t.test(
  'a proxy route, which sends the 100 itself, runs no preParsing hook; an endpoint runs one',
  async (t) => {
    const { buildTestApp } = await import('../helpers/app.js')
    const app = await buildTestApp(t, { routes: [route('/api/user', 'http://127.0.0.1:9')] })
    // Fastify runs its preParsing hook runner, and the closures it makes per
    // request, only for a route that has preParsing hooks.
    const lines = app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n')
    /** The hook lines listed under a route's own line. */
    const of = (path: string, method: string) => {
      const at = lines.findIndex(
        (line) => line.includes(`── ${path} (`) && new RegExp(`[(, ]${method}[,)]`).test(line),
      )
      t.not(at, -1, `${method} ${path} is listed`)
      const hooks: string[] = []
      for (let i = at + 1; i < lines.length && lines[i]!.includes('•'); i++) hooks.push(lines[i]!)
      t.ok(hooks.length > 0, `${method} ${path} has hooks listed`)
      return hooks.join('\n')
    }
    t.notMatch(of('/api/user', 'GET'), /\(preParsing\)/, 'no preParsing hook on a proxy route')
    t.match(of('/auth/backchannel-logout', 'POST'), /\(preParsing\) \["continueFirst\(\)"\]/)
  },
)
