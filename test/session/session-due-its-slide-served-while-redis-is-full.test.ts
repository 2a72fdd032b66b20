/**
 * A read slides the session's idle expiry every tenth of `idleTimeout`,
 * and the slide is a write. A Redis full under `noeviction` refuses it
 * with `OOM` while it still serves the read; the read used to fail with
 * it, so every session past its touch interval answered 503, `/auth/user`
 * and the sign-out link included, for as long as Redis stayed full,
 * though its token was fresh and nothing needed writing. Such a session
 * is now served with the idle expiry it has, and signing out still works
 * (a `DEL` is allowed in a full Redis). So it is by a Redis that has become
 * a replica (`READONLY`) under a gateway pointed at its address.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { ACL_USER, startRedis, startRedisWithAclUser } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

t.test('a full Redis serves a session due its slide, and lets its user sign out', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const stack = await startObservedStack(t, {
    accessTokenTtl: 3_600,
    config: { store: redis.url, keyPrefix: redis.prefix, idleTimeout: 600_000 },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
  stack.idp.resetStats()

  await admin.config('SET', 'maxmemory', '1')
  // Past the touch interval (60 s, a tenth of the 10 min idle timeout), well within the idle timeout.
  stack.clock.advance(90_000)
  const api = await apiCall(jar, `${base}/api/orders`)
  t.equal(api.status, 200, 'an API call on a fresh token is served')
  const user = await apiCall(jar, `${base}/auth/user`)
  t.equal(user.status, 200, '/auth/user is served')
  t.equal(stack.idp.stats.tokenRequests, 0, 'the IdP was not asked')

  // Still full: the slide was refused, so the idle expiry is where it was.
  stack.clock.advance(60_000)
  const again = await apiCall(jar, `${base}/auth/user`)
  t.equal(again.status, 200, 'served again')
  t.equal(
    again.json().sessionExpiresAt,
    user.json().sessionExpiresAt,
    'with the idle expiry it had: the refused slide was not counted',
  )

  const { logoutUrl } = user.json<{ logoutUrl: string }>()
  const out = await jarFetch(jar, `${base}${logoutUrl}`, { headers: { accept: 'text/html' } })
  t.equal(out.status, 200, 'signing out works while Redis is full')
  t.match(out.text, /Signing you out at your identity provider/)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'and the session is over')
  await admin.config('SET', 'maxmemory', '0')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'over once Redis has room too')
})

t.test('a session past its idle expiry is not served while Redis is full', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const stack = await startObservedStack(t, {
    accessTokenTtl: 3_600,
    config: { store: redis.url, keyPrefix: redis.prefix, idleTimeout: 600_000 },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  await admin.config('SET', 'maxmemory', '1')
  stack.clock.advance(601_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'idle past its timeout: 401, as ever')
})

t.test('a Redis turned into a replica (READONLY) still serves a session due its slide', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const other = await startRedis()
  t.teardown(() => other.stop())
  const own = new Redis(redis.url)
  t.teardown(() => own.disconnect())
  const peer = new Redis(other.url)
  t.teardown(() => peer.disconnect())
  const stack = await startObservedStack(t, {
    accessTokenTtl: 3_600,
    config: { store: redis.url, keyPrefix: redis.prefix, idleTimeout: 600_000 },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
  // The peer copies the gateway's Redis, takes over as primary, and the
  // gateway's Redis becomes its replica, with the same data: a failover
  // the gateway's connection, pointed at one address, did not follow.
  const linked = (client: Redis) => async () => /master_link_status:up/.test(await client.info('replication'))
  await peer.replicaof('127.0.0.1', String(redis.port))
  await pollUntil(linked(peer))
  await peer.replicaof('NO', 'ONE')
  await own.replicaof('127.0.0.1', String(other.port))
  await pollUntil(linked(own))

  stack.clock.advance(90_000)
  const user = await apiCall(jar, `${base}/auth/user`)
  t.equal(user.status, 200, 'served from the replica, the slide refused')
  // Each READONLY makes the gateway's connections again (and the refused
  // slide was one), so a sign-in may meet a connection being made: it
  // answers 503 either way, and once connected it names READONLY.
  const readOnly = /^Redis answered READONLY: /
  await pollUntil(async () => {
    const full = await login(base)
    t.equal(full.callback.status, 503, 'a sign-in, which must write, answers 503')
    const line = stack.lines.findLast((l) => l.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
    return readOnly.test(String(line?.cause))
  })
  t.pass('naming READONLY')
})

/**
 * So it is, since 2026-12-07, under an ACL that refuses scripts
 * (`-@scripting`): the slide is a script, refused `NOPERM`, while the
 * read, a plain `HMGET`, is served. Such a session answered 503 once past
 * its touch interval, though its token was fresh, while the same session
 * in a full Redis was served.
 */
t.test('an ACL without scripting serves a session due its slide', async (t) => {
  const { redis, admin, store } = await startRedisWithAclUser(t, ['~*', '&*', '+@all'])
  const stack = await startObservedStack(t, {
    accessTokenTtl: 3_600,
    config: { store, keyPrefix: redis.prefix, idleTimeout: 600_000, localCache: 0 },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')

  await admin.call('ACL', 'SETUSER', ACL_USER, '-@scripting')
  stack.clock.advance(90_000)
  const user = await apiCall(jar, `${base}/auth/user`)
  t.equal(user.status, 200, '/auth/user is served, the slide refused', { body: user.text })
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'an API call on a fresh token is served')
})
