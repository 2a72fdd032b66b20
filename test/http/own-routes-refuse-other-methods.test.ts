import type { FastifyInstance, HTTPMethods } from 'fastify'
import t, { type Test } from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { parseConfig } from '../../src/config/load.js'
import { HTTP_METHODS } from '../../src/config/schema.js'
import { buildGateway } from '../../src/server/gateway.js'
import { buildTestApp, seedSession, UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'

/*
 * Only back-channel logout told a client that used the wrong method so
 * (405, Allow: POST). The other routes of the gateway's own answered 404
 * to a method they do not serve: `POST /auth/user`, `GET
 * /auth/logout-everywhere`, a form that POSTs to `/auth/logout`, an IdP
 * told to POST its answer to `/auth/callback`, were told the route is missing.
 */

const OWN: readonly [string, readonly string[]][] = [
  ['/auth/login', ['GET', 'HEAD']],
  ['/auth/callback', ['GET', 'HEAD']],
  ['/auth/user', ['GET', 'HEAD']],
  ['/auth/logout', ['GET', 'HEAD']],
  ['/auth/logout-everywhere', ['POST']],
  ['/healthz', ['GET', 'HEAD']],
  ['/readyz', ['GET', 'HEAD']],
]

async function refusesOthers(t: Test, app: FastifyInstance, headers: Record<string, string> = {}) {
  for (const [path, served] of OWN) {
    for (const method of HTTP_METHODS.filter((m) => !served.includes(m))) {
      const res = await app.inject({ method, url: `${path}?returnTo=/x`, headers })
      const at = `${method} ${path}`
      t.equal(res.statusCode, 405, at)
      t.equal(res.headers.allow, served.join(', '), `${at}: Allow`)
      t.equal(res.headers['cache-control'], 'no-store', `${at}: not cached`)
      t.equal(res.headers['set-cookie'], undefined, `${at}: no cookie set or cleared`)
      if (method !== 'HEAD')
        t.same(
          JSON.parse(res.body),
          {
            error: 'method_not_allowed',
            message: 'This route does not accept this method; the Allow header lists those it does.',
          },
          `${at}: the problem body of the gateway's own errors`,
        )
    }
  }
}

t.test('each own route answers another method 405 with its Allow, signed in or not', async (t) => {
  const app = await buildTestApp(t)
  await refusesOthers(t, app)
  const { cookie } = await seedSession(app)
  // With a session, and the anti-forgery header or without: the method
  // is refused before either is looked at, so it tells nothing of them.
  await refusesOthers(t, app, { cookie })
  await refusesOthers(t, app, { cookie, 'x-csrf': '1', 'sec-fetch-site': 'cross-site' })
})

t.test("each provider's callback address, with identityProviders", async (t) => {
  const app = await buildTestApp(t, {
    identityProviders: [
      { name: 'corp', issuer: UNREACHABLE_ISSUER },
      { name: 'partner', issuer: UNREACHABLE_ISSUER },
    ],
  })
  for (const url of ['/auth/callback/corp', '/auth/callback/partner']) {
    const res = await app.inject({ method: 'POST', url, payload: { code: 'c', state: 's' } })
    t.equal(res.statusCode, 405, url)
    t.equal(res.headers.allow, 'GET, HEAD', `${url}: Allow`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/auth/callback/nobody' })).statusCode, 404)
})

t.test('a method Gatehouse does not know is still a 404', async (t) => {
  const app = await buildTestApp(t)
  for (const method of ['TRACE', 'PROPFIND'] as HTTPMethods[]) {
    const res = await app.inject({ method, url: '/auth/user' })
    t.equal(res.statusCode, 404, method)
  }
})

t.test('another method spends no sign-in budget', async (t) => {
  const app = await buildTestApp(t, { rateLimitMax: 2 })
  for (let i = 0; i < 5; i++) {
    for (const path of ['/auth/login', '/auth/callback']) {
      const res = await app.inject({ method: 'POST', url: path })
      t.equal(res.statusCode, 405, `${path} ${i}`)
    }
  }
  const login = await app.inject({ url: '/auth/login' })
  t.not(login.statusCode, 429, `GET /auth/login still has its budget (${login.statusCode})`)
  t.equal(login.headers['x-ratelimit-remaining'], '1', 'one of two spent, by this GET')
})

t.test("a catch-all route keeps the methods it takes under the gateway's paths", async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const app = await buildTestApp(t, {
    routes: [route('/', upstream.url, { token: 'none', csrf: false })],
  })
  for (const [method, url] of [
    ['POST', '/auth/user'],
    ['DELETE', '/auth/logout-everywhere'],
    ['POST', '/healthz'],
    ['GET', '/auth/backchannel-logout'],
  ] as const) {
    upstream.clear()
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 200, `${method} ${url}: the upstream's`)
    t.equal(upstream.requests.length, 1, `${method} ${url}: forwarded`)
  }
})

t.test("through frontends: each one's own routes, never another's", async (t) => {
  const config = parseConfig(
    `server: {}
oidc: { issuer: "${UNREACHABLE_ISSUER}", clientId: bff, clientSecret: s }
session: { secret: "${'s'.repeat(40)}" }
metrics: { enabled: false }
logging: { level: silent }
frontends:
  - { name: staff, host: staff.test, publicUrl: "https://staff.test", routes: [] }
  - { name: partners, host: partners.test, publicUrl: "https://partners.test", auth: { basePath: /signin }, routes: [] }
`,
    'routes.yaml',
    {},
  )
  const app = await buildGateway(config)
  t.teardown(() => app.close())
  await app.ready()
  const ask = (host: string, method: HTTPMethods, url: string) =>
    app.inject({ method, url, headers: { host } })
  const staff = await ask('staff.test', 'POST', '/auth/user')
  t.equal(staff.statusCode, 405)
  t.equal(staff.headers.allow, 'GET, HEAD')
  const partners = await ask('partners.test', 'DELETE', '/signin/logout-everywhere')
  t.equal(partners.statusCode, 405)
  t.equal(partners.headers.allow, 'POST')
  t.equal(
    (await ask('partners.test', 'POST', '/auth/user')).statusCode,
    404,
    "staff's path, through partners",
  )
  t.equal((await ask('other.test', 'POST', '/auth/user')).statusCode, 404, 'a host of no frontend')
  const health = await ask('other.test', 'POST', '/healthz')
  t.equal(health.statusCode, 405, 'the health checks are every host’s')
  t.equal(health.headers.allow, 'GET, HEAD')
})
