import { decodeJwt } from 'jose'
import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { dumpKeys } from '../helpers/redis-dump.js'
import { startStack } from '../helpers/stack.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * What a Redis backup, a replica or a reader with `KEYS *` and `GET` holds:
 * every key under the gateway's prefix, read by type. After a login, a
 * client-credentials call and a refresh (dumped while its lock was held),
 * none of it may contain a token the IdP issued, or the user's identity.
 */
t.test('a dump of every Redis key holds no token and no personal claim', async (t) => {
  const clock = new TestClock()
  const stack = await startStack(t, {
    // So the ID token carries a sid, and the session a sid index.
    backchannelLogout: true,
    config: { store: redis.url, keyPrefix: `${redis.prefix}dump:` },
    gateway: { now: clock.now },
    routes: (upstream) => [
      route('/api/orders', upstream),
      route('/api/reports', upstream, { token: 'client', scopes: ['reports.read'] }),
    ],
  })
  const { idp, gateway, config } = stack
  // Every token the IdP hands out, as its token endpoint sent it.
  const issued = new Set<string>()
  const identity = new Set<string>()
  // oidc-provider emits grant.success once the token endpoint's answer is set.
  idp.provider.on('grant.success', (ctx: { body?: unknown }) => {
    const body = ctx.body as Record<string, unknown>
    for (const field of ['access_token', 'refresh_token', 'id_token'] as const) {
      if (typeof body[field] === 'string') issued.add(body[field])
    }
    if (typeof body.id_token === 'string') {
      const claims = decodeJwt(body.id_token)
      for (const claim of ['sub', 'sid', 'name'] as const) {
        if (typeof claims[claim] === 'string') identity.add(claims[claim])
      }
    }
  })

  const user = 'dump-test-user-7f3a9c@example.com'
  const { jar } = await login(gateway.url, { user })
  t.equal((await apiCall(jar, `${gateway.url}/api/orders`)).status, 200)
  t.equal(
    (await apiCall(jar, `${gateway.url}/api/reports`)).status,
    200,
    'a client-credentials token is cached',
  )

  // The refresh: the IdP holds its answer while the test dumps, so the
  // dump catches the refresh lock and the session as they are mid-flight.
  let dumpedMidRefresh: Promise<Map<string, string>> | undefined
  idp.setTokenEndpointDelay(() => {
    dumpedMidRefresh ??= dumpKeys(redis.url, config.session.keyPrefix)
    return 1_500
  })
  clock.advance(60_000)
  t.equal((await apiCall(jar, `${gateway.url}/api/orders`)).status, 200)
  t.equal(idp.stats.refreshGrants, 1, 'the access token was refreshed')
  idp.setTokenEndpointDelay(0)
  const during = await dumpedMidRefresh!
  const after = await dumpKeys(redis.url, config.session.keyPrefix)

  // The dumps saw what there is to see.
  const kinds = (dump: Map<string, string>) =>
    new Set([...dump.keys()].map((key) => key.slice(config.session.keyPrefix.length).split(':')[0]))
  t.ok(kinds(during).has('lock'), `the mid-refresh dump holds the refresh lock (${[...kinds(during)]})`)
  t.ok(kinds(after).has('s'), 'the session')
  t.ok(kinds(after).has('ct'), 'the cached client-credentials token')
  t.ok(issued.size >= 5, `the IdP issued ${issued.size} tokens: login, client credentials, refresh`)
  identity.add(user)
  t.ok(identity.size >= 3, 'sub, sid and name are known')
  t.ok(kinds(after).has('sid'), 'the sid index')

  // Findings name the key and what kind of value it held, never the value.
  const findings = (dump: Map<string, string>) =>
    [...dump].flatMap(([key, value]) => [
      ...[...issued]
        .filter((token) => key.includes(token) || value.includes(token))
        .map(() => `${key}: a token`),
      ...[...identity]
        .filter((claim) => key.includes(claim) || value.includes(claim))
        .map(() => `${key}: a claim`),
    ])
  t.same(findings(during), [], `mid-refresh: none of ${during.size} keys holds a token or a claim`)
  t.same(findings(after), [], `after: none of ${after.size} keys holds a token or a claim`)
  t.equal((await apiCall(jar, `${gateway.url}/api/orders`)).status, 200, 'and the session carries on')
})
