/**
 * A lookup by `sub` or `sid` (a back-channel logout, "log out everywhere",
 * the per-user bound) prunes index members whose record is gone. A
 * sign-in writes its index members first and its record after, so a
 * lookup between the two finds no record, and its removal could land
 * after the sign-in had written the record and put its member back: the
 * new session then lived on with no index entry, which no back-channel
 * logout, no "log out everywhere" and no bound could find.
 */
import type { Redis } from 'ioredis'
import t from 'tap'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { startRedis } from '../helpers/redis.js'
import { indexName, SECRETS, session } from './fixtures.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

t.test('a lookup that finds a sign-in half written does not take its index entry away', async (t) => {
  const prefix = `${redis.prefix}half:`
  const client = createRedisClient(redis.url) as Redis
  await whenReady(client)
  t.teardown(() => closeRedisClient(client))
  const store = new RedisSessionStore({ client, keyPrefix: prefix, secrets: SECRETS, idleTimeoutMs: 60_000 })
  const index = `${prefix}${indexName('sub', 'alice')}`
  const made = session('late', Date.now())

  // The sign-in's first step: its member in alice's index, no record yet.
  await client.zadd(index, made.absoluteExpiresAt, made.id)
  // A lookup reads the index, finds no record, and is held at its removal.
  const zrem = client.zrem.bind(client)
  let atRemoval!: () => void
  const reached = new Promise<void>((resolve) => {
    atRemoval = resolve
  })
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  client.zrem = (async (...args: Parameters<typeof zrem>) => {
    atRemoval()
    await released
    return zrem(...args)
  }) as typeof client.zrem
  const lookup = store.idsBySub('alice')
  await reached
  client.zrem = zrem

  // Meanwhile the sign-in completes: its record, then its member again.
  await store.create(made)
  release()
  t.same(await lookup, [], 'the lookup saw no live session: its record was not written yet')

  t.not(await client.zscore(index, made.id), null, 'the index entry is there once the lookup is done')
  t.same(await store.idsBySub('alice'), [made.id], 'so a logout by sub finds the session')
})
