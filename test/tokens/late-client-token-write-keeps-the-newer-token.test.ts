/**
 * The shared copy of a client-credentials token is written by the instance
 * that fetched it, under the token's lock. A holder whose lock lapsed (its
 * renewals lost, as in a partition from Redis) while its IdP answer was
 * slow wrote the token it had been issued over the newer one the next
 * holder had fetched and stored meanwhile: every instance then took the
 * older token, and renewed it sooner than the newer one needed. Now a
 * write does not replace a shared copy that outlives the token written.
 *
 * Two instances on one real Redis, in front of the real dev IdP; the slow
 * answer is the IdP's own, held until the test lets it go, and the lapse
 * is the lock's TTL with the slow holder's renewals switched off.
 */
import t, { type Test } from 'tap'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { ClientTokens } from '../../src/tokens/client-tokens.js'
import { MemoryTokenCache } from '../../src/tokens/memory-token-cache.js'
import { RedisLockService } from '../../src/tokens/redis-lock.js'
import { RedisTokenCache } from '../../src/tokens/redis-token-cache.js'
import type { CachedToken } from '../../src/types.js'
import { route } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { SECRETS } from '../session/fixtures.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const SCOPES = ['reports.read']
/** The slow holder's lock: it lapses this long after it was taken, never renewed. */
const LAPSING_LOCK = 300

/** An instance's Redis connection, closed when `t` ends. */
async function connection(t: Test) {
  const client = createRedisClient(redis.url)
  t.teardown(() => closeRedisClient(client))
  await whenReady(client)
  return client
}

t.test('a holder whose lock lapsed does not write its older token over the newer one', async (t) => {
  const set = await startReplicaSet({
    keyPrefix: `${redis.prefix}late-gateway:`,
    accessTokenTtl: 3_600,
    count: 1,
    signIn: false,
    routes: (to) => [route('/reports', to, { token: 'client', scopes: SCOPES, anonymous: true })],
  })
  t.teardown(() => set.close())
  const { idp } = set
  const keyPrefix = `${redis.prefix}late:`
  const instance = async (lockTtl: number, renewEveryMs?: number) => {
    const client = await connection(t)
    const locks = new RedisLockService({
      client,
      keyPrefix,
      pollEveryMs: 20,
      ...(renewEveryMs === undefined ? {} : { renewEveryMs }),
    })
    t.teardown(() => locks.close())
    return new ClientTokens({
      cache: new RedisTokenCache({ client, keyPrefix, secrets: SECRETS }),
      locks,
      oidc: set.apps[0]!.gatehouse.providers,
      refreshBefore: 30_000,
      refreshWait: 10_000,
      lockTtl,
      now: Date.now,
    })
  }
  const slow = await instance(LAPSING_LOCK, 3_600_000)
  const next = await instance(10_000)

  // The IdP issues the slow holder's token, and holds its answer.
  let letGo!: () => void
  const held = new Promise<void>((resolve) => {
    letGo = resolve
  })
  let answers = 0
  idp.holdTokenAnswers(() => (++answers === 1 ? held : Promise.resolve()))
  const issued = new Promise<void>((resolve) => idp.provider.once('grant.success', () => resolve()))
  const older = slow.token(SCOPES)
  await issued

  // Its lock lapses: the next instance takes it, fetches and stores a newer token.
  const newer = await next.token(SCOPES)
  letGo()
  const late = await older
  t.not(late.accessToken, newer.accessToken, 'two tokens were issued')
  t.ok(late.expiresAt < newer.expiresAt, 'the slow holder’s expires first')
  t.equal(idp.stats.clientCredentialsGrants, 2)

  const third = await instance(10_000)
  t.equal(
    (await third.token(SCOPES)).accessToken,
    newer.accessToken,
    'an instance that reads the shared copy now gets the newer token',
  )
  t.equal(idp.stats.clientCredentialsGrants, 2, 'and asks the IdP nothing')
})

t.test('a write keeps a shared copy that outlives it, and replaces one that does not', async (t) => {
  const [one, two] = [await connection(t), await connection(t)].map(
    (client) => new RedisTokenCache({ client, keyPrefix: `${redis.prefix}cmp:`, secrets: SECRETS }),
  )
  const now = Date.now()
  const newer: CachedToken = { accessToken: 'newer', expiresAt: now + 60_000 }
  const older: CachedToken = { accessToken: 'older', expiresAt: now + 30_000 }
  await one!.set('reports', newer, 60_000)
  await two!.set('reports', older, 30_000)
  t.same(await one!.get('reports'), newer, 'the later write, of the older token, is not kept')
  const newest: CachedToken = { accessToken: 'newest', expiresAt: now + 90_000 }
  await two!.set('reports', newest, 90_000)
  t.same(await one!.get('reports'), newest, 'one that outlives it is')

  // A copy no configured secret opens is replaced whatever its expiry: it is absent to every reader.
  const rotated = new RedisTokenCache({
    client: await connection(t),
    keyPrefix: `${redis.prefix}cmp:`,
    secrets: ['a-session-secret-no-instance-has-any-more-32'],
  })
  await rotated.set('unreadable', newest, 90_000)
  await one!.set('unreadable', older, 30_000)
  t.same(await two!.get('unreadable'), older, 'an unreadable copy is replaced')
})

t.test('in one process, too, a write keeps a copy that outlives it', async (t) => {
  let now = 1_000
  const cache = new MemoryTokenCache(() => now)
  const newer: CachedToken = { accessToken: 'newer', expiresAt: now + 60_000 }
  await cache.set('reports', newer, 60_000)
  await cache.set('reports', { accessToken: 'older', expiresAt: now + 30_000 }, 30_000)
  t.same(await cache.get('reports'), newer)
  now += 60_000
  t.equal(await cache.get('reports'), undefined, 'until it expires')
})
