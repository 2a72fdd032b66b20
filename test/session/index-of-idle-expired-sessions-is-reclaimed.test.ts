import t, { type Test } from 'tap'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { startRedis } from '../helpers/redis.js'
import { indexName, SECRETS, session } from './fixtures.js'

// A user who signs in again and again and lets each session lapse (a kiosk
// that clears cookies, a script) left one member in the `sub` index per
// sign-in until its absolute expiry: 9,866 members for 268 live sessions
// after 10,000 sign-ins in 12 h, and at 500,000 every back-channel logout
// and "log out everywhere" of that user was a 503, since listing (the only
// other pruning) asked after each member before removing any.

const redis = await startRedis()
t.teardown(() => redis.stop())

const IDLE = 30 * 60_000
const ABSOLUTE = 12 * 3_600_000
const SIGN_INS = 400

t.test(
  'sign-ins whose sessions lapsed leave the index no bigger than its live sessions and a few',
  async (t) => {
    const prefix = `${redis.prefix}reclaim:`
    const client = createRedisClient(redis.url)
    t.teardown(() => closeRedisClient(client))
    await whenReady(client)
    // Redis expires keys on its own clock: sign-ins dated 12 h ago have idle
    // expiries already past there, so their records are gone at once, as
    // after 30 idle minutes, while their absolute expiries are still ahead.
    let fake = Date.now() - ABSOLUTE + 60_000
    const store = new RedisSessionStore({
      client,
      keyPrefix: prefix,
      secrets: SECRETS,
      idleTimeoutMs: IDLE,
      now: () => fake,
    })
    const step = Math.floor((ABSOLUTE - 120_000) / SIGN_INS)
    for (let i = 0; i < SIGN_INS; i++) {
      await store.create(
        session(`id${i}`, fake, {
          sid: 'sid-1',
          idleExpiresAt: fake + IDLE,
          absoluteExpiresAt: fake + ABSOLUTE,
        }),
      )
      fake += step
    }
    const live = (await client.keys(`${prefix}s:*`)).length
    t.ok(live > 0 && live < SIGN_INS / 10, `most sessions lapsed (${live} live)`)
    for (const claim of ['sub', 'sid'] as const) {
      const index = `${prefix}${indexName(claim, claim === 'sub' ? 'alice' : 'sid-1')}`
      const members = await client.zcard(index)
      t.ok(members <= live + 8, `${claim} index: ${members} members for ${live} live sessions`)
    }
    t.equal((await store.idsBySub('alice')).length, live, 'every live session is still found')
  },
)

t.test('a member whose session is still being written is never reclaimed', async (t) => {
  const prefix = `${redis.prefix}in-flight:`
  const client = createRedisClient(redis.url)
  t.teardown(() => closeRedisClient(client))
  await whenReady(client)
  const now = Date.now()
  const store = new RedisSessionStore({
    client,
    keyPrefix: prefix,
    secrets: SECRETS,
    idleTimeoutMs: IDLE,
    now: () => now,
  })
  const index = `${prefix}${indexName('sub', 'alice')}`
  // Another instance's sign-in a second ago, between its index write and its record write.
  await client.zadd(index, now - 1_000 + ABSOLUTE, 'in-flight')
  for (let i = 0; i < 20; i++)
    await store.create(
      session(`id${i}`, now, { idleExpiresAt: now + IDLE, absoluteExpiresAt: now + ABSOLUTE }),
    )
  t.not(await client.zscore(index, 'in-flight'), null, 'a just-indexed session keeps its member')
})

/**
 * Two instances' stores on one Redis, each with its own connection (so a
 * test can stand in one's commands), on a clock that stands still.
 */
async function twoInstances(t: Test, name: string) {
  const clientA = createRedisClient(redis.url)
  const clientB = createRedisClient(redis.url)
  t.teardown(() => Promise.all([closeRedisClient(clientA), closeRedisClient(clientB)]))
  await Promise.all([whenReady(clientA), whenReady(clientB)])
  const now = Date.now()
  const options = {
    keyPrefix: `${redis.prefix}${name}:`,
    secrets: SECRETS,
    idleTimeoutMs: IDLE,
    now: () => now,
  }
  const before = new RedisSessionStore({ client: clientA, ...options })
  const after = new RedisSessionStore({ client: clientB, ...options })
  return { clientA, clientB, now, before, after }
}

// The reclaim judges a member settled by its score, the absolute expiry:
// an instance still on a shorter session.absoluteTimeout (a reload not yet
// applied everywhere) or with a clock minutes behind writes scores that
// read as old. Its session, still being written, lost its member to the
// first sign-in of the same user elsewhere, and no logout found it after.
t.test('a session reclaimed from the index while its record was written is indexed once it is', async (t) => {
  const { clientA, now, before, after } = await twoInstances(t, 'reload')
  const seam = clientA as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const create = seam.ghCreate!.bind(clientA)
  // Between the earlier sign-in's index write and its record write, a later
  // one under the raised absoluteTimeout reclaims.
  seam.ghCreate = async (...args) => {
    await after.create(
      session('later', now, { sid: 'sid-1', idleExpiresAt: now + IDLE, absoluteExpiresAt: now + ABSOLUTE }),
    )
    return create(...args)
  }
  await before.create(
    session('earlier', now, { sid: 'sid-1', idleExpiresAt: now + IDLE, absoluteExpiresAt: now + 3_600_000 }),
  )
  t.same((await after.idsBySub('alice')).sort(), ['earlier', 'later'], 'both live sessions are found by sub')
  t.same((await after.idsBySid('sid-1')).sort(), ['earlier', 'later'], 'and by sid')
})

t.test(
  'a record written between the reclaim reading it gone and removing its member is indexed again',
  async (t) => {
    const { clientA, clientB, now, before, after } = await twoInstances(t, 'late-record')
    const seamA = clientA as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
    const seamB = clientB as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
    const create = seamA.ghCreate!.bind(clientA)
    const zrem = seamB.zrem!.bind(clientB)
    let earlierDone: Promise<void> | undefined
    let later: Promise<void> | undefined
    let reclaimRead!: () => void
    const read = new Promise<void>((resolve) => {
      reclaimRead = resolve
    })
    seamB.zrem = async (...args) => {
      reclaimRead()
      await earlierDone
      return zrem(...args)
    }
    seamA.ghCreate = async (...args) => {
      later = after.create(
        session('later', now, { idleExpiresAt: now + IDLE, absoluteExpiresAt: now + ABSOLUTE }),
      )
      await read
      return create(...args)
    }
    earlierDone = before.create(
      session('earlier', now, { idleExpiresAt: now + IDLE, absoluteExpiresAt: now + 3_600_000 }),
    )
    await earlierDone
    await later
    t.same(
      (await after.idsBySub('alice')).sort(),
      ['earlier', 'later'],
      'both live sessions are found by sub',
    )
  },
)
