import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const REFUSED = 'Bearer error="invalid_token", error_description="revoked"'

interface Options {
  readonly replicas?: number
  readonly store?: 'memory' | 'redis'
  readonly clock?: TestClock
}

/**
 * A resource server that asks the IdP whether each token is still live
 * (its own store, as introspection does) and answers 401 `invalid_token`
 * (RFC 6750 §3.1) to one that is not, or to every token once told to;
 * else 200 with the token it was sent.
 */
async function verifyingUpstream(idp: () => DevIdp) {
  const seen: string[] = []
  let refuseAll = false
  const server: Server = createServer((req, res) => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
    seen.push(token)
    req.resume()
    idp()
      .isActive(token)
      .then((active) => {
        if (active && !refuseAll) res.end(token)
        else res.writeHead(401, { 'www-authenticate': REFUSED }).end('refused')
      })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    refuseAll() {
      refuseAll = true
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * Gateways whose anonymous `client` routes send the dev IdP's
 * client-credentials token to the verifying upstream: `/reports`
 * replays a refused token, `/strict` does not (`retryOnInvalidToken: false`).
 */
async function setup(t: Test, options: Options = {}) {
  let idpRef: DevIdp | undefined
  const upstream = await verifyingUpstream(() => idpRef!)
  t.teardown(() => upstream.close())
  const set = await startReplicaSet({
    ...(options.store === 'redis' ? { store: redis.url } : {}),
    keyPrefix: `${redis.prefix}cc${Math.random().toString(36).slice(2)}:`,
    count: options.replicas ?? 1,
    // Tokens live an hour: none is replaced here because it is due.
    accessTokenTtl: 3_600,
    idp: { clientCredentialsTtl: 3_600 },
    ...(options.clock ? { now: options.clock.now } : {}),
    upstream: upstream.url,
    routes: (to) => [
      route('/reports', to, { token: 'client', scopes: ['reports.read'], anonymous: true }),
      route('/strict', to, {
        token: 'client',
        scopes: ['reports.read'],
        anonymous: true,
        retryOnInvalidToken: false,
      }),
    ],
    signIn: false,
  })
  t.teardown(() => set.close())
  const { idp, apps, urls, jar } = set
  idpRef = idp
  /** Every instance holds the token: the first fetched it, the others read it from the shared cache. */
  const warm = async () => {
    const tokens = new Set<string>()
    for (const url of urls) {
      const res = await apiCall(jar, `${url}/reports/x`)
      t.equal(res.status, 200, 'the first token is taken')
      tokens.add(res.text)
    }
    t.equal(tokens.size, 1, 'one token, shared')
    idp.resetStats()
    upstream.seen.length = 0
    return [...tokens][0]!
  }
  /** The IdP revokes the token, as an administrator or a key rotation does. */
  const revoke = async (token: string) => {
    const found = await idp.provider.ClientCredentials.find(token)
    await found!.destroy()
    t.notOk(await idp.isActive(token), 'revoked at the IdP')
  }
  const metric = async (name: string) => {
    let total = 0
    for (const app of apps) {
      const text = await app.gatehouse.metrics.registry.metrics()
      for (const [, n] of text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'gm'))) total += Number(n)
    }
    return total
  }
  return { idp, upstream, urls, jar, warm, revoke, metric }
}

t.test('a revoked client token is replaced once and the request answered with the new one', async (t) => {
  const { idp, upstream, urls, jar, warm, revoke, metric } = await setup(t)
  const first = await warm()
  await revoke(first)
  const res = await apiCall(jar, `${urls[0]}/reports/x`)
  t.equal(res.status, 200, 'the browser sees the replay, not the 401')
  t.not(res.text, first, 'the replay carried a new token')
  t.ok(await idp.isActive(res.text), 'one the IdP issued')
  t.equal(idp.stats.clientCredentialsGrants, 1, 'one new grant')
  t.same(upstream.seen, [first, res.text], 'refused once, then replayed once')
  t.equal(await metric('gatehouse_upstream_token_retries_total'), 1, 'the replay is counted')
  const next = await apiCall(jar, `${urls[0]}/reports/y`)
  t.equal(next.text, res.text, 'the next request takes the new token from the cache')
  t.equal(idp.stats.clientCredentialsGrants, 1)
})

t.test('100 parallel requests refused for one client token make one grant', async (t) => {
  const { idp, urls, jar, warm, revoke } = await setup(t)
  const first = await warm()
  await revoke(first)
  const answers = await Promise.all(
    Array.from({ length: 100 }, (_, i) => apiCall(jar, `${urls[0]}/reports/${i}`)),
  )
  t.same(new Set(answers.map((a) => a.status)), new Set([200]), 'every request answered 200')
  t.equal(new Set(answers.map((a) => a.text)).size, 1, 'all with one new token')
  t.equal(idp.stats.clientCredentialsGrants, 1, 'one grant for 100 refusals')
})

t.test('two instances sharing Redis, refused for one client token: one grant', async (t) => {
  const { idp, urls, jar, warm, revoke } = await setup(t, { replicas: 2, store: 'redis' })
  const first = await warm()
  await revoke(first)
  const answers = await Promise.all(
    Array.from({ length: 100 }, (_, i) => apiCall(jar, `${urls[i % 2]}/reports/${i}`)),
  )
  t.same(new Set(answers.map((a) => a.status)), new Set([200]), 'every request answered 200')
  t.equal(new Set(answers.map((a) => a.text)).size, 1, 'both instances replayed with one new token')
  t.equal(idp.stats.clientCredentialsGrants, 1, 'one grant across two instances')
})

t.test(
  'an instance still holding the refused token takes the one another fetched, not a grant of its own',
  async (t) => {
    const { idp, urls, jar, warm, revoke } = await setup(t, { replicas: 2, store: 'redis' })
    const first = await warm()
    await revoke(first)
    const replaced = await apiCall(jar, `${urls[0]}/reports/a`)
    t.equal(idp.stats.clientCredentialsGrants, 1)
    // The second instance's local copy is still the refused token: its
    // refusal must drop that token only, not the one now in the cache.
    const late = await apiCall(jar, `${urls[1]}/reports/b`)
    t.equal(late.status, 200)
    t.equal(late.text, replaced.text, 'replayed with the token the first instance fetched')
    t.equal(idp.stats.clientCredentialsGrants, 1, 'no second grant')
  },
)

t.test(
  'an upstream refusing every client token costs one grant per cool-down, across instances',
  async (t) => {
    const { idp, upstream, urls, jar, warm, metric } = await setup(t, { replicas: 2, store: 'redis' })
    await warm()
    upstream.refuseAll()
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) statuses.push((await apiCall(jar, `${urls[i % 2]}/reports/${i}`)).status)
    t.same(new Set(statuses), new Set([401]), 'the refusals reach the browser')
    t.equal(idp.stats.clientCredentialsGrants, 1, 'one grant for 20 refusals on two instances')
    // The second instance's first request went with its copy of the first
    // token: it was replayed too, with the token the first instance fetched.
    t.equal(upstream.seen.length, 22, 'one replay per instance; the other 18 requests were not replayed')
    t.equal(
      await metric('gatehouse_upstream_token_retry_cooldowns_total'),
      18,
      'each refusal passed on is counted',
    )
  },
)

t.test('the client token cool-down ends: then one more grant may be forced', async (t) => {
  const clock = new TestClock().freeze()
  const { idp, upstream, urls, jar, warm } = await setup(t, { clock })
  await warm()
  upstream.refuseAll()
  for (let i = 0; i < 3; i++) await apiCall(jar, `${urls[0]}/reports/${i}`)
  t.equal(idp.stats.clientCredentialsGrants, 1)
  clock.advance(59_000)
  for (let i = 0; i < 3; i++) await apiCall(jar, `${urls[0]}/reports/${i}`)
  t.equal(idp.stats.clientCredentialsGrants, 1, 'still inside the minute')
  clock.advance(2_000)
  for (let i = 0; i < 3; i++) await apiCall(jar, `${urls[0]}/reports/${i}`)
  t.equal(idp.stats.clientCredentialsGrants, 2, 'a minute on, one more')
})

t.test('retryOnInvalidToken: false passes the 401 on and asks for no token', async (t) => {
  const { idp, upstream, urls, jar, warm, revoke } = await setup(t)
  const first = await warm()
  await revoke(first)
  const res = await apiCall(jar, `${urls[0]}/strict/x`)
  t.equal(res.status, 401)
  t.equal(res.headers.get('www-authenticate'), REFUSED, 'as the upstream answered')
  t.equal(idp.stats.clientCredentialsGrants, 0, 'no grant')
  t.same(upstream.seen, [first], 'sent once')
})
