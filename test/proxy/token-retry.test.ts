import Fastify from 'fastify'
import t, { type Test } from 'tap'
import type { EchoUpstream } from '../../dev/upstream.js'
import type { GatehouseConfig, RouteConfig } from '../../src/config/types.js'
import { refusesToken } from '../../src/proxy/refusal-handlers.js'
import { cookiesPlugin } from '../../src/session/cookies.js'
import { type AudienceStackOptions, ORDERS, startAudienceStack } from '../helpers/audience-stack.js'
import { SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'

/**
 * The rotating IdP with resource indicators, and upstreams that introspect
 * every token and answer 401 `invalid_token` (RFC 6750 §3.1) to one the IdP
 * no longer accepts, as resource servers do once a token is revoked.
 */
async function setup(
  t: Test,
  routeOptions: Partial<RouteConfig> = {},
  stackOptions: Partial<AudienceStackOptions> = {},
) {
  const stack = await startAudienceStack({ rejectInactive: true, routeOptions, ...stackOptions })
  t.teardown(() => stack.close())
  /** Revokes, at the IdP, the token the upstream last saw. */
  const revokeLast = async (upstream: EchoUpstream) => {
    const token = upstream.requests.at(-1)!.authorization!.slice('Bearer '.length)
    await (await stack.idp.provider.AccessToken.find(token))!.destroy()
    return `Bearer ${token}`
  }
  return {
    idp: stack.idp,
    orders: stack.upstreams.orders,
    jar: stack.jar,
    url: stack.urls[0]!,
    stack,
    revokeLast,
  }
}

t.test('40 requests refused for a revoked token make one refresh, and each is replayed once', async (t) => {
  const { idp, orders, jar, url, stack, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  const revoked = await revokeLast(orders)
  idp.resetStats()
  orders.clear()
  // A slow IdP: nearly every request reaches the upstream with the revoked
  // token before the refresh it causes is done. 300 ms let fewer than 20
  // through on a loaded machine (load average 20).
  idp.setTokenEndpointDelay(1_000)
  const responses = await Promise.all(Array.from({ length: 40 }, () => apiCall(jar, `${url}/orders/x`)))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]), 'the browser sees only the second answers')
  t.equal(responses[0]!.json<{ token: { aud: string } }>().token.aud, ORDERS)
  t.equal(idp.stats.refreshGrants, 1, 'one refresh for 40 refusals')
  t.equal(idp.stats.refreshReplays, 0)
  // A late request may find the new token in the session and never be refused.
  const refusals = orders.requests.filter((r) => r.authorization === revoked).length
  t.ok(refusals >= 20, `${refusals} requests refused for the revoked token`)
  t.equal(orders.requests.length, 40 + refusals, 'each refused request replayed exactly once')
  const metrics = await stack.apps[0]!.gatehouse.metrics.registry.metrics()
  t.match(metrics, `gatehouse_upstream_token_retries_total{route="/orders"} ${refusals}\n`)
})

t.test('the login token is replaced the same way', async (t) => {
  const { idp, jar, url, stack, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/api/x`)).status, 200)
  await revokeLast(stack.upstreams.api)
  idp.resetStats()
  t.equal((await apiCall(jar, `${url}/api/x`)).status, 200)
  t.equal(idp.stats.refreshGrants, 1)
})

t.test('a body up to 64 KiB is replayed; a larger one gets the 401 as it came', async (t) => {
  const { jar, url, orders, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  const revoked = await revokeLast(orders)
  const small = JSON.stringify({ pad: 'x'.repeat(60 * 1024) })
  const replayed = await apiCall(jar, `${url}/orders/x`, {
    method: 'POST',
    body: small,
    headers: { 'content-type': 'application/json' },
  })
  t.equal(replayed.status, 200)
  t.equal(replayed.json().bodyLength, small.length, 'the replay carried the whole body')
  const [refused, replay] = orders.requests.slice(-2)
  t.same([refused!.authorization, refused!.body.length], [revoked, small.length])
  t.not(replay!.authorization, revoked)

  await revokeLast(orders)
  const large = 'y'.repeat(100 * 1024)
  const passed = await apiCall(jar, `${url}/orders/x`, { method: 'POST', body: large })
  t.equal(passed.status, 401, 'a streamed large body is not replayed')
  t.match(passed.headers.get('www-authenticate') ?? '', /invalid_token/)
})

/** The session cookie of `config`'s gateway carrying session key `key`, sealed with `secret`. */
async function sealedWith(config: GatehouseConfig, secret: string, key: string): Promise<string> {
  const sealer = Fastify()
  await sealer.register(cookiesPlugin, {
    config: { ...config, session: { ...config.session, secrets: [secret] } },
  })
  await sealer.ready()
  const cookie = sealer.encodeSecureSession(sealer.createSecureSession({ key }), 'session')
  await sealer.close()
  // As @fastify/cookie serialises it.
  return encodeURIComponent(cookie)
}

t.test(
  'a request whose session cookie is re-sealed on the way out is replayed, and gets the cookie',
  async (t) => {
    // `secrets: [new, old]`: a cookie opened with the old key is re-sealed on
    // this very answer, which so must go through Fastify's onSend hooks.
    const NEW_SECRET = 'a-brand-new-session-secret-of-32-chars-or-more'
    const { idp, orders, jar, url, stack, revokeLast } = await setup(
      t,
      {},
      { secrets: [NEW_SECRET, SESSION_SECRET] },
    )
    t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
    const app = stack.apps[0]!
    const key = app
      .decodeSecureSession(decodeURIComponent(jar.get(url, 'gatehouse')!), app.log, 'session')!
      .get('key') as string
    const old = await sealedWith(stack.configs[0]!, SESSION_SECRET, key)
    jar.set(url, 'gatehouse', old)
    const revoked = await revokeLast(orders)
    idp.resetStats()
    orders.clear()

    const res = await apiCall(jar, `${url}/orders/x`)
    t.equal(res.status, 200, 'the browser sees only the replay')
    t.equal(idp.stats.refreshGrants, 1, 'one refresh')
    t.same(
      orders.requests.map((r) => r.authorization === revoked),
      [true, false],
      'refused once, replayed once with the new token',
    )
    const resealed = jar.get(url, 'gatehouse')!
    t.not(resealed, old, 'the re-sealed cookie came with the replayed answer')
    t.equal(app.decodeSecureSession(decodeURIComponent(resealed), app.log, 'session')!.get('key'), key)
    const metrics = await app.gatehouse.metrics.registry.metrics()
    t.match(metrics, 'gatehouse_upstream_token_retries_total{route="/orders"} 1\n')
  },
)

t.test('a text/plain body is replayed as the client sent it', async (t) => {
  const { jar, url, orders, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  const revoked = await revokeLast(orders)
  orders.clear()
  const text = 'grüße, '.repeat(1000)
  const res = await apiCall(jar, `${url}/orders/x`, {
    method: 'POST',
    body: text,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  })
  t.equal(res.status, 200)
  t.same(
    orders.requests.map((r) => [r.authorization === revoked, r.body]),
    [
      [true, text],
      [false, text],
    ],
    'the same body on the refused request and on the replay',
  )
})

t.test(
  'while the gateway drains, the replay still happens and its answer closes the connection',
  async (t) => {
    const { idp, orders, jar, url, stack, revokeLast } = await setup(t)
    t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
    const revoked = await revokeLast(orders)
    idp.resetStats()
    orders.clear()
    // The refresh the refusal causes starts the shutdown, and is slow enough
    // for its preClose hook to have run by the time the replay answers.
    let closing: Promise<void> | undefined
    idp.setTokenEndpointDelay(() => {
      closing ??= stack.apps[0]!.close()
      return 500
    })
    const res = await apiCall(jar, `${url}/orders/x`)
    t.equal(res.status, 200)
    t.equal(res.headers.get('connection'), 'close', 'the draining answer says so')
    t.equal(idp.stats.refreshGrants, 1)
    t.same(
      orders.requests.map((r) => r.authorization === revoked),
      [true, false],
    )
    t.ok(closing, 'the refresh began the shutdown')
    await closing
  },
)

t.test('retryOnInvalidToken: false passes the 401 through', async (t) => {
  const { idp, jar, url, orders, revokeLast } = await setup(t, { retryOnInvalidToken: false })
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  await revokeLast(orders)
  idp.resetStats()
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 401)
  t.equal(idp.stats.refreshGrants, 0)
})

t.test('only a Bearer invalid_token challenge asks for a fresh token (RFC 6750 §3.1)', async (t) => {
  t.ok(refusesToken('Bearer error="invalid_token"'))
  t.ok(refusesToken('Bearer realm="api", error="invalid_token", error_description="expired"'))
  t.ok(refusesToken(['Basic realm="x"', 'Bearer error=invalid_token']))
  t.notOk(refusesToken('Bearer error="insufficient_scope"'))
  t.notOk(refusesToken('Bearer realm="api"'))
  t.notOk(refusesToken('Basic error="invalid_token"'))
  // Read as challenges, not as text: a realm or an error_uri that spells
  // another scheme or `error=invalid_token` is not that challenge.
  t.notOk(refusesToken('Basic realm="bearer", error="invalid_token"'))
  t.notOk(
    refusesToken('Bearer error="insufficient_scope", error_uri="https://api.example/e?error=invalid_token"'),
  )
  t.ok(refusesToken('Basic realm="x", DPoP error="invalid_token"'))
  t.ok(refusesToken('bearer ERROR="invalid_token"'))
  t.notOk(refusesToken(undefined))
})
