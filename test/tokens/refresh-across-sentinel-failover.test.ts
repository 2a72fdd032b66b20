import type { Test } from 'tap'
import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { pollUntil } from '../helpers/redis.js'
import { startRedisSentinel } from '../helpers/redis-topology.js'
import { onceServed, type StormAnswer, startReplicaSet, storm } from '../helpers/replicas.js'

/** Access tokens live a minute of IdP time; the gateways' TestClock crosses expiries at will. */
const TTL_S = 60

/** A fresh Sentinel topology and three gateways on it whose clock the test moves. */
async function failoverSetup(t: Test, confirmWrites = true) {
  const redis = await startRedisSentinel()
  t.teardown(() => redis.stop())
  const clock = new TestClock()
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: 'gh:',
    accessTokenTtl: TTL_S,
    now: clock.now,
    confirmWrites,
  })
  t.teardown(() => set.close())
  return { redis, clock, set }
}

/**
 * The primary dies right after a refresh it never passed on to its replica
 * (the relay to the replica holds everything the primary sends), and
 * Sentinel promotes the replica.
 */
async function refreshThenLoseThePrimary(t: Test, confirmWrites: boolean) {
  const { redis, clock, set } = await failoverSetup(t, confirmWrites)
  t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'signed in')

  redis.link.holdReplies()
  clock.advance(TTL_S * 1_000)
  const during = await apiCall(set.jar, `${set.urls[1]}/api/orders`)
  await redis.primary.kill()
  await redis.promoted()
  const after = await onceServed(set, set.urls[2]!)
  return { during, after, stats: { ...set.idp.stats } }
}

t.test('a refresh the replica has not confirmed is never used: 503, then the session lives on', async (t) => {
  const { during, after, stats } = await refreshThenLoseThePrimary(t, true)
  t.equal(during.status, 503, 'the refresh could not be made durable: 503')
  t.ok(during.headers.get('retry-after'), 'with Retry-After')
  t.equal(after.status, 200, 'after the failover the same session works')
  t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
  t.equal(stats.revokedGrants, 0, 'no grant revoked')
})

t.test(
  'negative control: without confirmation the refresh is answered, lost in the failover, and the grant revoked',
  async (t) => {
    const { during, after, stats } = await refreshThenLoseThePrimary(t, false)
    t.equal(during.status, 200, 'the refresh was used at once')
    t.ok(
      stats.refreshReplays >= 1,
      `the promoted replica held the consumed token: ${stats.refreshReplays} replay`,
    )
    t.ok(stats.revokedGrants >= 1, 'and the IdP revoked the grant')
    t.equal(after.status, 401, 'the user is logged out by our infrastructure')
  },
)

t.test(
  'SIGKILL of the primary in a 32-way storm across expiries: only 200 or 503, then the same session, no replays',
  async (t) => {
    const { redis, clock, set } = await failoverSetup(t)

    // Phases, each ended by enough 200s: warm up; cross an expiry; cross
    // another and kill the primary at once, so its refresh meets the
    // failover; recover; cross two more expiries on the promoted replica.
    const quota = [100, 100, 0, 150, 150, 150]
    let phase = 0
    let ok = 0
    let killedAt = 0
    let recovered = false
    const readiness: number[] = []
    const hardStop = Date.now() + 90_000
    const killing: Promise<void>[] = []
    const onAnswer = (answer: StormAnswer) => {
      if (answer.status === 200) ok++
      if (phase === 2) {
        if (recovered && ok >= 100) {
          phase = 3
          ok = 0
          clock.advance(TTL_S * 1_000)
        }
        return
      }
      if (phase >= quota.length || ok < quota[phase]!) return
      ok = 0
      phase++
      if (phase === 1 || phase === 4 || phase === 5) clock.advance(TTL_S * 1_000)
      if (phase === 2) {
        clock.advance(TTL_S * 1_000)
        killedAt = Date.now()
        killing.push(
          (async () => {
            await redis.primary.kill()
            await redis.promoted()
            // /readyz reports the outage and the recovery by itself.
            for (;;) {
              const status = (await fetch(`${set.urls[0]}/readyz`)).status
              readiness.push(status)
              if (status === 200 || Date.now() > hardStop) break
              await new Promise((r) => setTimeout(r, 100))
            }
            recovered = true
            ok = 0
          })(),
        )
      }
    }
    const answers = await storm(set, 32, () => phase >= quota.length || Date.now() > hardStop, onAnswer)
    await Promise.all(killing)

    t.ok(phase >= quota.length, `the storm ran through every phase (${answers.length} requests)`)
    const byStatus = new Map<number, number>()
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1)
    t.same(
      [...byStatus.keys()].filter((s) => s !== 200 && s !== 503),
      [],
      `only 200 and 503 (${JSON.stringify(Object.fromEntries(byStatus))})`,
    )
    const errors = answers.filter((a) => a.status !== 200)
    t.ok(
      errors.every((a) => a.retryAfter),
      'every 503 says when to retry',
    )
    if (errors.length > 0) {
      const first = Math.min(...errors.map((a) => a.at)) - killedAt
      const last = Math.max(...errors.map((a) => a.at)) - killedAt
      t.ok(first >= 0, `no error before the kill (first ${first} ms after it)`)
      t.ok(last <= 12_000, `errors confined to the failover window (last ${last} ms after the kill)`)
    }
    t.ok(readiness.length > 0 && readiness.at(-1) === 200, `/readyz back to 200 (${readiness.join(',')})`)
    t.equal((await apiCall(set.jar, `${set.urls[1]}/api/orders`)).status, 200, 'the same session works after')
    const stats = set.idp.stats
    t.equal(stats.refreshReplays, 0, 'zero refresh tokens replayed')
    t.equal(stats.revokedGrants, 0, 'zero grants revoked')
    t.ok(
      stats.refreshGrants >= 5 && stats.refreshGrants <= 6,
      `${stats.refreshGrants} refreshes for 5 expiries: one each, at most one more`,
    )
  },
)

t.test(
  'the primary dies while the IdP rotates the token: the new tokens reach the promoted replica, not a replay',
  async (t) => {
    const { redis, clock, set } = await failoverSetup(t)
    t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'signed in')

    // The lock is taken and confirmed, the IdP takes its time to answer,
    // and the primary dies in between: the rotated tokens exist only in
    // the memory of the instance that redeemed them.
    set.idp.setTokenEndpointDelay(1_500)
    clock.advance(TTL_S * 1_000)
    const refreshing = apiCall(set.jar, `${set.urls[1]}/api/orders`)
    await pollUntil(async () => set.idp.stats.tokenRequests >= 1, 5_000)
    await redis.primary.kill()
    const during = await refreshing
    set.idp.setTokenEndpointDelay(0)
    await redis.promoted()
    const after = await onceServed(set, set.urls[2]!)
    t.equal(during.status, 200, 'the refreshing request waited out the failover and succeeded')
    t.equal(after.status, 200, 'the same session works on another replica')
    const stats = set.idp.stats
    t.equal(stats.refreshGrants, 1, 'one refresh')
    t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(stats.revokedGrants, 0, 'no grant revoked')
  },
)
