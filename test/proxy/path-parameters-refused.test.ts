import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { upstreamReadsPathAsWeDo } from '../../src/proxy/path-check.js'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { endSessionsOf, startScriptedStack } from '../helpers/scripted-stack.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/** Dot-segments as Tomcat, Spring and double-decoding upstreams read them; `..;` is the servlet classic. */
const REFUSED = [
  '..;/admin',
  '..;foo/admin',
  '..;jsessionid=1/admin',
  '.;/admin',
  '.;x/admin',
  'x/..;/..;/admin',
  '..%3b/admin',
  '..%3B/admin',
  '%2e%2e;/admin',
  '%2E%2E%3B/admin',
  '.%2e;/admin',
  '%2e.%3b/admin',
  '%252e%252e%253b/admin',
  '.%252e;/admin',
  '..%25253b/admin',
  'x%2f..;%2fadmin',
  'x%2F%2e%2e%3B%2Fadmin',
  // Already refused before: they stay refused, now in one place and before the guard.
  '../admin',
  './admin',
  '%2e%2e/admin',
  '%2e/admin',
  'x/..',
  '%252e%252e/admin',
  'x%2f..%2fadmin',
  // @fastify/reply-from refuses any `/..` or `../`; so do we, on both answer paths.
  '..foo/bar',
  'foo../bar',
  '...;/x',
  '%2e%2efoo/bar',
  // Characters a URL parser rewrites.
  '..\\admin',
  'a\\b',
  'a"b',
  'a{b}',
]

/** Paths that look odd but name no dot-segment: they must reach the upstream byte for byte. */
const FORWARDED = [
  'a;b/c',
  'matrix;v=1/x',
  'file.json',
  '.foo/bar',
  'foo./bar',
  'a..b/c',
  '.well-known/x',
  'a%2Fb',
  '100%25',
  '100%252e',
  '%7Euser',
  'caf%C3%A9',
  'a|b',
  "x!$&'()*+,=:@~",
  'q?path=..;/admin&x=%2e%2e',
]

async function setup(t: Test) {
  const started = await startScriptedStack(t, (upstream) => [
    route('/api/user', upstream, { rewritePath: '/svc/v1' }),
    route('/api/maybe', upstream, { token: 'optional-user', rewritePath: '/svc/v2' }),
    route('/api/client', upstream, { token: 'client', scopes: ['reports.read'] }),
    route('/api/public', upstream, { token: 'none', csrf: false }),
  ])
  return started
}

t.test('a dot-segment in any encoding or with a path parameter is refused before any token', async (t) => {
  const { upstream, base } = await setup(t)
  const { jar } = await login(base)
  const cookie = jar.header(`${base}/api/user/x`)!
  for (const prefix of ['/api/user', '/api/maybe', '/api/client', '/api/public']) {
    for (const rest of REFUSED) {
      const path = `${prefix}/${rest}`
      for (const headers of [{ cookie }, {} as Record<string, string>]) {
        const res = await rawCall(`${base}/`, headers, { path })
        t.equal(res.status, 400, `${path}${headers.cookie ? '' : ' (no session)'}`)
        t.equal(JSON.parse(res.body.toString()).error, 'invalid_path', path)
      }
    }
  }
  for (const path of ['/api/user/%zz', '/api/public/%ff']) {
    const res = await rawCall(`${base}/`, { cookie }, { path })
    t.equal(res.status, 400, `${path}: an escape that does not decode`)
    t.equal(JSON.parse(res.body.toString()).error, 'invalid_path', path)
  }
  t.equal(upstream.seen.length, 0, 'nothing reached the upstream')
})

t.test('the check runs before anti-forgery and the session: 400, not 403 or 401', async (t) => {
  const { base } = await setup(t)
  const noCsrf = await fetch(`${base}/api/user/..;/admin`.replace('/..;', '/..%3b'))
  t.equal(noCsrf.status, 400)
  const res = await rawCall(`${base}/`, {}, { path: '/api/user/..;/admin' })
  t.equal(res.status, 400, 'a user route without a session says 400, so the guard never ran')
})

t.test(
  'every other path reaches the upstream exactly as the client sent it, on both proxy paths',
  async (t) => {
    const { upstream, stack, base } = await setup(t)
    const { jar } = await login(base)
    const cookie = jar.header(`${base}/api/user/x`)!
    for (const rest of FORWARDED) {
      const res = await rawCall(`${base}/`, { cookie }, { path: `/api/user/${rest}` })
      t.equal(res.status, 200, rest)
      t.equal(upstream.seen.at(-1)?.url, `/svc/v1/${rest}`, `direct: ${rest}`)
    }
    // With the session gone, each answer clears the cookie and so goes through Fastify's send.
    await endSessionsOf(stack, jar)
    for (const rest of FORWARDED) {
      const res = await rawCall(`${base}/`, { cookie }, { path: `/api/maybe/${rest}` })
      t.equal(res.status, 200, rest)
      t.match(String(res.headers['set-cookie']), /gatehouse=;/, `${rest} took the fallback path`)
      t.equal(upstream.seen.at(-1)?.url, `/svc/v2/${rest}`, `through Fastify's send: ${rest}`)
    }
  },
)

t.test('a raw request line with a dot-segment never reaches the upstream either', async (t) => {
  const { upstream, base } = await setup(t)
  const { port } = new URL(base)
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write('GET /api/public/..;/admin HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n'),
    )
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
    })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 400 /)
  t.equal(upstream.seen.length, 0)
})

t.test('the path rule on its own', async (t) => {
  for (const rest of REFUSED) t.notOk(upstreamReadsPathAsWeDo(`/api/${rest}`), rest)
  for (const rest of FORWARDED) t.ok(upstreamReadsPathAsWeDo(`/api/${rest}`), rest)
  t.ok(upstreamReadsPathAsWeDo('/'))
  t.ok(upstreamReadsPathAsWeDo('/api/x?a=..;/b'), 'the query is not the path')
})
