import type { Test } from 'tap'
import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { causeName } from '../../src/errors.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { ReplicaConfirmation } from '../../src/redis/durability.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { RedisLockService } from '../../src/tokens/redis-lock.js'
import { probeClient, startRedisSentinel } from '../helpers/redis-topology.js'
import { pollUntil } from '../helpers/within.js'
import { openTokens, ref, SECRETS, session } from '../session/fixtures.js'

const redis = await startRedisSentinel()
t.teardown(() => redis.stop())
const store = parseStore(redis.url) as RedisStoreConfig
const replica = probeClient(redis.replica.port)
await replica.connect()
t.teardown(() => replica.disconnect())

async function open(t: Test, confirmed: boolean) {
  const client = createRedisClient(store)
  const writer = createRedisClient(store)
  await Promise.all([whenReady(client, 5_000), whenReady(writer, 5_000)])
  const confirm = confirmed ? new ReplicaConfirmation({ client: writer }) : undefined
  const sessions = new RedisSessionStore({
    client,
    keyPrefix: 'd:',
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
    ...(confirm ? { confirm } : {}),
  })
  const locks = new RedisLockService({ client, keyPrefix: 'd:', ...(confirm ? { confirm } : {}) })
  t.teardown(async () => {
    redis.link.release()
    await locks.close()
    await Promise.all([closeRedisClient(client), closeRedisClient(writer)])
  })
  return { client, sessions, locks }
}

const next = (now: number) => ({ accessToken: 'A2', accessTokenExpiresAt: now + 120_000, refreshToken: 'R2' })

t.test('a confirmed token update is on the replica by the time it resolves', async (t) => {
  const { sessions } = await open(t, true)
  const now = Date.now()
  await sessions.create(session('c1', now))
  t.equal(await replica.hget('d:s:{c1}', 'v'), '0', 'the new session is on the replica')
  t.equal(await sessions.updateTokens(ref('c1'), 0, next(now)), 'updated')
  t.equal(
    openTokens('c1', await replica.hget('d:s:{c1}', 'tokens')).refreshToken,
    'R2',
    'so are its rotated tokens',
  )
})

t.test('a write no replica confirms is reported as not done: 503, never a silent success', async (t) => {
  const { client, sessions, locks } = await open(t, true)
  const now = Date.now()
  await sessions.create(session('c2', now))
  redis.link.holdReplies()
  const started = Date.now()
  const refused = await sessions.updateTokens(ref('c2'), 0, next(now)).then(
    () => undefined,
    (err: Error) => err,
  )
  t.match(refused, { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE', statusCode: 503 })
  // The log line's `cause`: it was "Error", as for any Redis failure without a code.
  t.match(causeName(refused!), /^no replica confirmed the write within \d+ ms$/, 'its log line says why')
  t.ok(Date.now() - started < 1_500, `within the WAIT budget (${Date.now() - started} ms)`)
  await t.rejects(locks.tryAcquire('refresh:c2', 5_000), { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' })
  t.equal(await client.exists('d:lock:{refresh:c2}'), 0, 'an unconfirmed lock is given back, not held')
  redis.link.release()
  t.ok(await locks.tryAcquire('refresh:c2', 5_000), 'once the replica hears again, the lock is granted')
})

t.test('negative control: unconfirmed, a write resolves while the replica lacks it', async (t) => {
  const { sessions } = await open(t, false)
  const now = Date.now()
  await sessions.create(session('c3', now))
  await pollUntil(async () => (await replica.exists('d:s:{c3}')) === 1, 5_000)
  redis.link.holdReplies()
  t.equal(await sessions.updateTokens(ref('c3'), 0, next(now)), 'updated', 'the primary took it and said so')
  t.equal(
    openTokens('c3', await replica.hget('d:s:{c3}', 'tokens')).refreshToken,
    'R1',
    'the replica still holds the consumed refresh token',
  )
})
