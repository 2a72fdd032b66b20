/**
 * A failover that keeps the address: a managed service moves its primary
 * endpoint's name to the promoted replica, or an operator swaps the roles
 * with REPLICAOF, and the old primary, now a replica, keeps the gateway's
 * connections. Only new connections reach the new primary. Every write
 * over the old ones answered READONLY, for as long as they lasted, which
 * with a healthy replica is for ever: every sign-in and refresh 503, with
 * Redis up. A READONLY now makes the gateway's connections again.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { pollUntil } from '../helpers/within.js'

t.test('a primary turned into a replica under the gateway: writes go to the new primary', async (t) => {
  const first = await startRedis()
  t.teardown(() => first.stop())
  const second = await startRedis()
  t.teardown(() => second.stop())
  // The name the gateway is given: a relay that a failover points elsewhere.
  const endpoint = await startTcpProxy(first.url)
  t.teardown(() => endpoint.close())
  const one = new Redis(first.url)
  t.teardown(() => one.disconnect())
  const two = new Redis(second.url)
  t.teardown(() => two.disconnect())
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    config: { store: endpoint.url, keyPrefix: first.prefix },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
  stack.idp.resetStats()

  const linked = (client: Redis) => async () => /master_link_status:up/.test(await client.info('replication'))
  await two.replicaof('127.0.0.1', String(first.port))
  await pollUntil(linked(two))
  await two.replicaof('NO', 'ONE')
  await one.replicaof('127.0.0.1', String(second.port))
  await pollUntil(linked(one))
  endpoint.retarget(second.url)

  // The access token is due: its refresh takes the lock and stores the rotated token, both writes.
  stack.clock.advance(61_000)
  await pollUntil(async () => (await apiCall(jar, `${base}/api/orders`)).status === 200)
  t.pass('the refresh was stored, on the new primary')
  t.equal(stack.idp.stats.refreshGrants, 1, 'one refresh')
  t.match(
    stack.lines.find((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE'),
    { cause: /^Redis answered READONLY: / },
    'the write refused on the old primary was named',
  )
  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'and the next refresh too')
  t.equal(stack.idp.stats.refreshGrants, 2, 'on the rotated token')
  t.equal(stack.idp.stats.refreshReplays, 0, 'no refresh token presented twice')
  t.equal(stack.idp.stats.revokedGrants, 0)
})
