import { once } from 'node:events'
import t, { type Test } from 'tap'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { reportSessionCache } from '../../src/server/redis-stores.js'
import { RedisSessionStore, type RedisSessionStoreOptions } from '../../src/session/redis-store.js'
import { NOT_IN_MEMORY, type SessionData } from '../../src/session/types.js'
import { startRedis } from '../helpers/redis.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { keyFor, ref, SECRETS, session } from './fixtures.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

let n = 0

/**
 * Two instances on one Redis: `writer` without a local copy, `reader` with
 * one. Either of the reader's connections may go through a relay the test
 * controls.
 */
async function instances(
  t: Test,
  options: {
    readonly main?: TcpProxy
    readonly tracking?: TcpProxy
    readonly cache?: Partial<NonNullable<RedisSessionStoreOptions['cache']>>
  } = {},
) {
  const prefix = `${redis.prefix}tc${++n}:`
  const writerClient = createRedisClient(redis.url)
  const readerClient = createRedisClient(options.main?.url ?? redis.url)
  const writer = new RedisSessionStore({
    client: writerClient,
    keyPrefix: prefix,
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
  })
  const reader = new RedisSessionStore({
    client: readerClient,
    keyPrefix: prefix,
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
    cache: { url: options.tracking?.url ?? redis.url, maxEntries: 100, ...options.cache },
  })
  await Promise.all([whenReady(writerClient), whenReady(readerClient)])
  const cache = reader.cache!
  if (!cache.armed) await once(cache, 'armed')
  t.teardown(async () => {
    await reader.close()
    await Promise.all([closeRedisClient(readerClient), closeRedisClient(writerClient)])
  })
  /**
   * A create, then its own invalidation: until that arrives, a read begun
   * after the create is (rightly) not cached, which would race the test.
   */
  const created = async (store: RedisSessionStore, data: SessionData) => {
    await store.create(data)
    await cache.sync()
  }
  return { writer, reader, cache, created, key: (id: string) => `${prefix}s:{${id}}` }
}

async function proxy(t: Test): Promise<TcpProxy> {
  const relay = await startTcpProxy(redis.url)
  t.teardown(() => relay.close())
  return relay
}

/** Fails the test instead of hanging it when an event never comes. */
async function eventually(emitter: NodeJS.EventEmitter, event: string, ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    once(emitter, event),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms)
    }),
  ])
  clearTimeout(timer)
}

const rotated = (now: number) => ({
  accessToken: 'A2',
  accessTokenExpiresAt: now + 60_000,
  refreshToken: 'R2',
})

t.test('a warm copy is handed only to the key that opened it, without a round trip', async (t) => {
  const main = await proxy(t)
  const { writer, reader, cache, created } = await instances(t, { main })
  const now = Date.now()
  await created(writer, session('k1', now))
  t.ok(await reader.get(ref('k1'), now), 'read with the cookie key, and kept')
  t.equal(cache.size, 1)
  main.blackhole()
  const hits = cache.stats.hits
  await t.rejects(reader.get({ id: 'k1', key: keyFor('another') }, now + 1_000), {
    code: 'GATEHOUSE_ERR_SESSION_UNREADABLE',
  })
  t.equal(cache.stats.hits, hits + 1, 'refused from memory, as Redis would have refused it')
  t.same(await reader.get(ref('k1'), now + 1_000), session('k1', now), 'the right key is still served')
})

t.test('a warm read needs no round trip: it is served while the command connection is silent', async (t) => {
  const main = await proxy(t)
  const { writer, reader, cache, created } = await instances(t, { main })
  const now = Date.now()
  await created(writer, session('w1', now))
  t.equal((await reader.get(ref('w1'), now))?.version, 0, 'the first read goes to Redis')
  t.equal(cache.size, 1, 'and is kept')
  main.blackhole()
  t.same(await reader.get(ref('w1'), now + 1_000), session('w1', now), 'the next comes from memory')
  main.release()
})

t.test(
  'a copy that looks expired is checked against Redis, where another instance may have slid it',
  async (t) => {
    const tracking = await proxy(t)
    const { writer, reader, created } = await instances(t, { tracking, cache: { maxStalenessMs: 60_000 } })
    const now = Date.now()
    await created(writer, session('x1', now))
    await reader.get(ref('x1'), now)
    tracking.blackhole()
    t.equal((await writer.get(ref('x1'), now + 7_000))?.idleExpiresAt, now + 67_000, 'the writer slides it')
    const later = await reader.get(ref('x1'), now + 61_000)
    t.equal(later?.id, 'x1', "past the copy's idle expiry, the session is still live")
    t.equal(later?.idleExpiresAt, now + 121_000, 'and slides again')
    t.equal(await reader.get(ref('x1'), now + 200_000), undefined, 'idle for real: gone')
    tracking.release()
  },
)

t.test(
  'a read with touch: false is served from the copy when its touch is due, and slides nothing',
  async (t) => {
    const main = await proxy(t)
    const { writer, reader, created } = await instances(t, { main })
    const now = Date.now()
    await created(writer, session('nt1', now))
    await reader.get(ref('nt1'), now)
    // Past the touch interval (a tenth of the idle timeout): a sliding read
    // would go to Redis and run the touch; this one needs no round trip.
    main.blackhole()
    const seen = await reader.get(ref('nt1'), now + 30_000, { touch: false })
    t.equal(seen?.idleExpiresAt, now + 60_000, 'served from memory, the idle expiry unmoved')
    main.release()
    t.equal(
      (await writer.get(ref('nt1'), now + 30_000, { touch: false }))?.idleExpiresAt,
      now + 60_000,
      'Redis holds the same idle expiry',
    )
    t.equal(await reader.get(ref('nt1'), now + 60_000, { touch: false }), undefined, 'and it ends there')
  },
)

t.test('a logout or a refresh on another instance reaches this one with its invalidation', async (t) => {
  const { writer, reader, cache, key, created } = await instances(t)
  const now = Date.now()
  await created(writer, session('w2', now))
  await created(writer, session('w3', now))
  await reader.get(ref('w2'), now)
  await reader.get(ref('w3'), now)
  t.equal(cache.size, 2)

  t.equal(await writer.updateTokens(ref('w2'), 0, rotated(now)), 'updated')
  await writer.delete('w3')
  await cache.sync()
  t.equal(cache.get(key('w2')), undefined, 'the updated session was dropped')
  t.equal((await reader.get(ref('w2'), now))?.tokens.refreshToken, 'R2', 'and is read again')
  t.equal(await reader.get(ref('w3'), now), undefined, 'the deleted session is gone here too')
})

t.test('this instance reads its own writes without waiting for the invalidation', async (t) => {
  const tracking = await proxy(t)
  const { reader, cache, key, created } = await instances(t, { tracking, cache: { maxStalenessMs: 60_000 } })
  const now = Date.now()
  await created(reader, session('w4', now))
  await reader.get(ref('w4'), now)
  t.ok(cache.get(key('w4')))
  tracking.blackhole()
  t.equal(await reader.updateTokens(ref('w4'), 0, rotated(now)), 'updated')
  t.equal((await reader.get(ref('w4'), now))?.version, 1, 'the update')
  await reader.delete('w4')
  t.equal(await reader.get(ref('w4'), now), undefined, 'the delete')
  tracking.release()
})

t.test('until an invalidation arrives the copy is served, but a fresh read always asks Redis', async (t) => {
  const tracking = await proxy(t)
  const { writer, reader, cache, created } = await instances(t, {
    tracking,
    cache: { maxStalenessMs: 60_000 },
  })
  const now = Date.now()
  await created(writer, session('w5', now))
  await reader.get(ref('w5'), now)
  tracking.blackhole()
  await writer.updateTokens(ref('w5'), 0, rotated(now))
  t.equal((await reader.get(ref('w5'), now))?.version, 0, 'the copy, while the invalidation is held')
  const fresh = await reader.get(ref('w5'), now, { fresh: true })
  t.equal(fresh?.version, 1, 'a fresh read sees the rotated tokens')
  t.equal(fresh?.tokens.refreshToken, 'R2')
  tracking.release()
  await cache.sync()
  t.equal((await reader.get(ref('w5'), now))?.version, 1, 'and so does every read once it arrives')
})

t.test('a read that its invalidation overtakes is not cached', async (t) => {
  const main = await proxy(t)
  const { writer, reader, cache, key, created } = await instances(t, { main })
  const now = Date.now()
  await created(writer, session('w6', now))
  main.holdReplies()
  const inFlight = reader.get(ref('w6'), now)
  // Redis has answered (so it read version 0) but the answer is held.
  await main.replyHeld()
  await writer.updateTokens(ref('w6'), 0, rotated(now))
  await cache.sync()
  main.release()
  t.equal((await inFlight)?.version, 0, 'the read returns what Redis read')
  t.equal(cache.get(key('w6')), undefined, 'but it is not kept')
  t.equal((await reader.get(ref('w6'), now))?.version, 1, 'the next read sees the update')
})

t.test('a silent invalidation connection stops the copy being served, then recovers', async (t) => {
  const tracking = await proxy(t)
  const { writer, reader, cache, key, created } = await instances(t, {
    tracking,
    cache: { heartbeatMs: 20, maxStalenessMs: 200 },
  })
  const now = Date.now()
  await created(writer, session('w7', now))
  await reader.get(ref('w7'), now)
  t.ok(cache.get(key('w7')))
  tracking.blackhole()
  await writer.delete('w7')
  await eventually(cache, 'disarmed')
  t.equal(cache.size, 0, 'the copy was emptied')
  t.equal(await reader.get(ref('w7'), now), undefined, 'the logout holds though its invalidation never came')
  tracking.release()
  await eventually(cache, 'armed')
  await created(writer, session('w8', now))
  await reader.get(ref('w8'), now)
  t.ok(cache.get(key('w8')), 'caching again on a new connection')
})

t.test('without a recent heartbeat the copy is not served, even on a connection still open', async (t) => {
  let clock = 0
  const { writer, reader, cache, key, created } = await instances(t, {
    cache: { heartbeatMs: 3_600_000, maxStalenessMs: 1_000, clock: () => clock },
  })
  const now = Date.now()
  await created(writer, session('h1', now))
  await reader.get(ref('h1'), now)
  t.ok(cache.get(key('h1')), 'served within maxStalenessMs of the last proof')
  clock = 1_000
  t.equal(cache.get(key('h1')), undefined, 'not served after it')
  t.ok(cache.armed, 'though nothing reported the connection down')
})

t.test('a dropped invalidation connection empties the copy; what changed meanwhile is read', async (t) => {
  const tracking = await proxy(t)
  const { writer, reader, cache, created } = await instances(t, { tracking })
  const now = Date.now()
  await created(writer, session('w9', now))
  await reader.get(ref('w9'), now)
  tracking.blackhole()
  tracking.cut()
  await eventually(cache, 'disarmed')
  // Redis drops this invalidation: nobody is subscribed on our behalf.
  await writer.updateTokens(ref('w9'), 0, rotated(now))
  tracking.release()
  await eventually(cache, 'armed')
  t.equal((await reader.get(ref('w9'), now))?.version, 1)
})

t.test('bounded: the least recently used session goes first', async (t) => {
  const { writer, reader, cache, key, created } = await instances(t, { cache: { maxEntries: 2 } })
  const now = Date.now()
  for (const id of ['b1', 'b2', 'b3']) await created(writer, session(id, now))
  await reader.get(ref('b1'), now)
  await reader.get(ref('b2'), now)
  await reader.get(ref('b1'), now)
  await reader.get(ref('b3'), now)
  t.equal(cache.size, 2)
  t.ok(cache.get(key('b1')), 'b1 was used last but one')
  t.equal(cache.get(key('b2')), undefined, 'b2 was least recently used')
})

t.test('a Redis that refuses CLIENT TRACKING: no copy, every read goes to Redis', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of our own, to change its ACLs')
  const admin = createRedisClient(redis.url)
  t.teardown(() => closeRedisClient(admin))
  await whenReady(admin)
  await admin.call('ACL', 'SETUSER', 'notracking', 'on', '>notracking', '~*', '&*', '+@all', '-client')
  const url = new URL(redis.url)
  url.username = 'notracking'
  url.password = 'notracking'
  const store = new RedisSessionStore({
    client: admin,
    keyPrefix: `${redis.prefix}refused:`,
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
    cache: { url: url.toString(), maxEntries: 100 },
  })
  t.teardown(() => store.close())
  await eventually(store.cache!, 'unsupported')
  const now = Date.now()
  await store.create(session('r1', now))
  t.equal((await store.get(ref('r1'), now))?.id, 'r1', 'the store works')
  t.equal(store.cache!.size, 0, 'uncached')

  const warnings: unknown[][] = []
  reportSessionCache(store, { warn: (...args: unknown[]) => void warnings.push(args) } as never)
  t.match(
    warnings,
    [[{ code: 'GATEHOUSE_SESSION_CACHE_OFF', reason: /NOPERM/ }, /CLIENT TRACKING/]],
    'and says why',
  )
})

t.test('peek answers from the warm copy without waiting, and says when only Redis can tell', async (t) => {
  const { writer, reader, cache, created } = await instances(t)
  const now = Date.now()
  await created(writer, session('p1', now))
  t.equal(reader.peek(ref('p1'), now), NOT_IN_MEMORY, 'cold: Redis must be asked')
  t.ok(await reader.get(ref('p1'), now), 'the read fills the copy')
  const misses = cache.stats.misses
  t.same(reader.peek(ref('p1'), now + 1_000), session('p1', now), 'warm: the copy, at once')
  t.equal(cache.stats.misses, misses, 'a served peek counts as a hit, not a miss')
  t.throws(() => reader.peek({ id: 'p1', key: keyFor('another') }, now + 1_000), {
    code: 'GATEHOUSE_ERR_SESSION_UNREADABLE',
  })
  t.equal(reader.peek(ref('p1'), now + 59_000), NOT_IN_MEMORY, 'a copy due for its touch goes to Redis')
  await writer.delete('p1')
  await cache.sync()
  t.equal(reader.peek(ref('p1'), now + 1_000), NOT_IN_MEMORY, 'another instance deleted it: the copy is gone')
  t.equal(await reader.get(ref('p1'), now + 1_000), undefined, 'and Redis says so')
})

t.test('onChange names each session another instance changes or deletes, and only sessions', async (t) => {
  const { writer, reader, cache, created } = await instances(t)
  const heard: string[] = []
  const stop = reader.onChange((id) => heard.push(id))
  t.teardown(stop)
  await created(writer, session('h1', Date.now()))
  await writer.delete('h1')
  await cache.sync()
  t.same(heard, ['h1', 'h1'], 'the create, then the delete')
  stop()
  await created(writer, session('h2', Date.now()))
  t.same(heard, ['h1', 'h1'], 'nothing after stop')
})
