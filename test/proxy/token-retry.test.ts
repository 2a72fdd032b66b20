import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { type DevIdp, startDevIdp } from '../../dev/idp.js'
import type { RouteConfig } from '../../src/config/types.js'
import { refusesToken } from '../../src/proxy/token-retry.js'
import { CLIENT_ID, CLIENT_SECRET, freePort, route, startGateway, testConfig } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'

const ORDERS = 'https://orders.example'

/**
 * An upstream that asks the IdP about every token, as a resource server
 * introspecting opaque tokens does, and answers 401 `invalid_token` to
 * one the IdP no longer accepts (RFC 6750 §3.1).
 */
async function introspectingUpstream(idp: DevIdp) {
  const seen: { token: string; body: string; status: number }[] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const token = req.headers.authorization?.replace(/^Bearer /, '') ?? ''
    const found = token ? await idp.introspect(token) : { active: false }
    const body = Buffer.concat(chunks).toString('utf8')
    if (!found.active) {
      seen.push({ token, body, status: 401 })
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token", error_description="revoked"' })
      res.end('{"error":"invalid_token"}')
      return
    }
    seen.push({ token, body, status: 200 })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ aud: found.aud ?? null, bodyLength: body.length }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

async function setup(t: Test, extra: Partial<RouteConfig> = {}) {
  const port = await freePort()
  const idp = await startDevIdp({
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
      },
    ],
    resourceIndicators: { resources: { [ORDERS]: { scopes: ['orders.read'] } } },
  })
  const upstream = await introspectingUpstream(idp)
  const gateway = await startGateway(
    testConfig({
      port,
      issuer: idp.issuer,
      routes: [
        route('/orders', upstream.url, { resource: ORDERS, ...extra }),
        route('/api', upstream.url, extra),
      ],
    }),
  )
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
    await idp.close()
  })
  const { jar } = await login(gateway.url)
  const url = gateway.url
  /** Revokes, at the IdP, the token the upstream last accepted. */
  const revokeLast = async () => {
    const token = upstream.seen.filter((s) => s.status === 200).at(-1)!.token
    await (await idp.provider.AccessToken.find(token))!.destroy()
    return token
  }
  return { idp, upstream, jar, url, revokeLast }
}

t.test('40 requests refused for a revoked token make one refresh, and each is replayed once', async (t) => {
  const { idp, upstream, jar, url, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  const revoked = await revokeLast()
  idp.resetStats()
  upstream.seen.length = 0
  // A slow IdP: every request reaches the upstream with the revoked token
  // before the refresh it causes is done.
  idp.setTokenEndpointDelay(300)
  const responses = await Promise.all(Array.from({ length: 40 }, () => apiCall(jar, `${url}/orders/x`)))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]), 'the browser sees only the second answers')
  t.equal(responses[0]!.json().aud, ORDERS)
  t.equal(idp.stats.refreshGrants, 1, 'one refresh for 40 refusals')
  t.equal(idp.stats.refreshReplays, 0)
  // Nearly all reach the upstream before the refresh is done; a late one
  // may find the new token in the session and never be refused.
  const refusals = upstream.seen.filter((s) => s.status === 401 && s.token === revoked).length
  t.ok(refusals >= 20, `${refusals} requests refused for the revoked token`)
  t.equal(upstream.seen.filter((s) => s.status === 200).length, 40, 'each answered once with a fresh token')
  t.equal(upstream.seen.length, 40 + refusals, 'each refused request replayed exactly once')
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, `gatehouse_upstream_token_retries_total{route="/orders"} ${refusals}\n`)
})

t.test('the login token is replaced the same way', async (t) => {
  const { idp, jar, url, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/api/x`)).status, 200)
  await revokeLast()
  idp.resetStats()
  t.equal((await apiCall(jar, `${url}/api/x`)).status, 200)
  t.equal(idp.stats.refreshGrants, 1)
})

t.test('a body up to 64 KiB is replayed; a larger one gets the 401 as it came', async (t) => {
  const { jar, url, upstream, revokeLast } = await setup(t)
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  await revokeLast()
  const small = JSON.stringify({ pad: 'x'.repeat(60 * 1024) })
  const replayed = await apiCall(jar, `${url}/orders/x`, {
    method: 'POST',
    body: small,
    headers: { 'content-type': 'application/json' },
  })
  t.equal(replayed.status, 200)
  t.equal(replayed.json().bodyLength, small.length, 'the replay carried the whole body')
  t.same(
    upstream.seen.slice(-2).map((s) => [s.status, s.body.length]),
    [
      [401, small.length],
      [200, small.length],
    ],
  )

  await revokeLast()
  const large = 'y'.repeat(100 * 1024)
  const passed = await apiCall(jar, `${url}/orders/x`, { method: 'POST', body: large })
  t.equal(passed.status, 401, 'a streamed large body is not replayed')
  t.match(passed.headers.get('www-authenticate') ?? '', /invalid_token/)
})

t.test('retryOnInvalidToken: false passes the 401 through', async (t) => {
  const { idp, jar, url, revokeLast } = await setup(t, { retryOnInvalidToken: false })
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  await revokeLast()
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
  t.notOk(refusesToken(undefined))
})
