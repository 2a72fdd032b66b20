import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { ConfigError } from '../../src/config/errors.js'
import { buildTestApp, seedSession } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'

t.test('a method the route does not list: 405 with Allow, before the session or a token', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const app = await buildTestApp(t, {
    routes: [
      route('/api/orders', upstream.url, { methods: ['GET', 'POST'] }),
      route('/api/public', upstream.url, { token: 'none', methods: ['GET'] }),
    ],
  })
  // A refresh is due and the IdP unreachable: any token work would answer 503.
  const { cookie } = await seedSession(app, {
    tokens: { accessToken: 'A1', accessTokenExpiresAt: Date.now() - 1_000, refreshToken: 'R1' },
  })
  for (const method of ['DELETE', 'PUT', 'PATCH', 'OPTIONS'] as const) {
    // No anti-forgery header either: the method is refused before the guard runs.
    const res = await app.inject({ method, url: '/api/orders/1', headers: { cookie } })
    t.equal(res.statusCode, 405, method)
    t.equal(res.headers.allow, 'GET, HEAD, POST', `${method}: Allow lists the route's methods, HEAD with GET`)
    t.same(JSON.parse(res.body).error, 'method_not_allowed')
    t.equal(res.headers['set-cookie'], undefined, `${method}: the session was not touched`)
  }
  const post = await app.inject({ method: 'POST', url: '/api/public/x', headers: { 'x-csrf': '1' } })
  t.equal(post.statusCode, 405)
  t.equal(post.headers.allow, 'GET, HEAD')
  t.equal(upstream.requests.length, 0, 'nothing refused reached the upstream')

  const head = await app.inject({ method: 'HEAD', url: '/api/public/x', headers: { 'x-csrf': '1' } })
  t.equal(head.statusCode, 200, 'HEAD comes with GET')
  const get = await app.inject({ url: '/api/public/x', headers: { 'x-csrf': '1' } })
  t.equal(get.statusCode, 200)
  const refresh = await app.inject({ url: '/api/orders/1', headers: { cookie, 'x-csrf': '1' } })
  t.equal(
    refresh.statusCode,
    503,
    'a listed method goes on to the guard (whose refresh the IdP cannot serve)',
  )
})

t.test('methods: config errors name the route and the problem', async (t) => {
  const base = { port: 3000, issuer: 'https://idp.example.com' }
  const config = testConfig({ ...base, routes: [route('/api', 'http://u:1')] })
  t.same(
    config.routes[0]!.methods,
    ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    'all by default',
  )
  const problems = (routes: Parameters<typeof route>[2][]) => {
    try {
      testConfig({ ...base, routes: routes.map((extra, i) => route(`/r${i}`, 'http://u:1', extra)) })
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`)
      throw err
    }
    return []
  }
  t.match(problems([{ methods: ['get' as 'GET'] }]), [/^routes\[0\]\.methods\[0\]: must be one of GET, HEAD/])
  t.match(problems([{ methods: [] }]), [/^routes\[0\]\.methods: /])
  t.match(problems([{ methods: ['GET', 'GET'] }]), [/^routes\[0\]\.methods: /])
  t.same(problems([{ websocket: true, methods: ['POST'] }]), [
    'routes[0].methods: must include GET on a websocket route: the upgrade is a GET',
  ])
})
