import t from 'tap'
import type { Coordination } from '../../src/tokens/refresh-scope.js'
import { audiencesSeen, ORDERS, REPORTS, startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'

const LOOPS = 72
const LIFETIMES = 4
/** Seconds, as the IdP issues them; the gateway's clock crosses one per phase. */
const TTL_S = 300
/** Requests each upstream must answer within a lifetime before the clock crosses to the next. */
const PER_PHASE = 40
const PATHS = ['/api', '/orders', '/reports'] as const

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Three replicas on one Redis, one session, 72 loops spread over /api (the
 * login token), /orders and /reports (a token per resource), across four
 * access-token lifetimes that the gateways' shared clock crosses mid-storm.
 */
async function storm(coordination: Coordination, { revokeMidway = false } = {}) {
  const clock = new TestClock()
  const stack = await startAudienceStack({
    replicas: 3,
    redisUrl: redis.url,
    keyPrefix: `${redis.prefix}${coordination}:${revokeMidway}:`,
    accessTokenTtl: TTL_S,
    rejectInactive: revokeMidway,
    gateway: { now: clock.now, coordination },
  })
  stack.idp.resetStats()
  const statuses = new Map<number, number>()
  let next = 0
  let stop = false
  const loops = Array.from({ length: LOOPS }, async (_, i) => {
    while (!stop) {
      const url = stack.urls[next++ % stack.urls.length]!
      const { status } = await apiCall(stack.jar, `${url}${PATHS[i % PATHS.length]}/x`)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
  })
  const upstreams = Object.values(stack.upstreams)
  let revoked: string | undefined
  let revokedAt = 0
  for (let phase = 0; phase < LIFETIMES; phase++) {
    if (phase > 0 && revokeMidway && revoked === undefined) {
      // The orders API's token is revoked mid-storm, within its lifetime.
      revoked = stack.upstreams.orders.requests.at(-1)!.authorization!.slice('Bearer '.length)
      revokedAt = stack.upstreams.orders.requests.length
      await (await stack.idp.provider.AccessToken.find(revoked))!.destroy()
    } else if (phase > 0) clock.advance(TTL_S * 1000 + 1_000)
    // Each lifetime lasts until every audience has been stormed in it, however loaded the machine.
    // Refused requests do not count: their replays do.
    const served = (u: (typeof upstreams)[number]) =>
      u.requests.filter((r) => revoked === undefined || r.authorization !== `Bearer ${revoked}`).length
    const marks = upstreams.map((u) => served(u) + PER_PHASE)
    const deadline = Date.now() + 30_000
    const stormed = () => upstreams.every((u, i) => served(u) >= marks[i]!)
    // A revoked grant ends the session: no later request reaches an upstream.
    while (!stormed() && stack.idp.stats.revokedGrants === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  stop = true
  await Promise.all(loops)
  const seen = {
    api: await audiencesSeen(stack.idp, stack.upstreams.api),
    orders: await audiencesSeen(stack.idp, stack.upstreams.orders),
    reports: await audiencesSeen(stack.idp, stack.upstreams.reports),
  }
  const stats = { ...stack.idp.stats }
  // Those that arrived after the revocation were refused; a few in flight at that moment may have been too.
  const withRevoked = (r: { authorization: string | undefined }) => r.authorization === `Bearer ${revoked}`
  const refusals = stack.upstreams.orders.requests.slice(revokedAt).filter(withRevoked)
  const carried = stack.upstreams.orders.requests.filter(withRevoked)
  const metrics = await Promise.all(stack.apps.map((app) => app.gatehouse.metrics.registry.metrics()))
  const retries = metrics
    .map((text) =>
      Number(/gatehouse_upstream_token_retries_total\{route="\/orders"\} (\d+)/.exec(text)?.[1] ?? 0),
    )
    .reduce((a, b) => a + b, 0)
  await stack.close()
  return { statuses, stats, seen, refusals: refusals.length, carried: carried.length, retries }
}

t.test('one session storms three resources on three replicas: every request 200, no replay', async (t) => {
  const { statuses, stats, seen } = await storm('single-flight')
  const total = [...statuses.values()].reduce((a, b) => a + b, 0)
  t.ok(total >= 3 * PER_PHASE * LIFETIMES, `${total} requests`)
  t.same(Object.fromEntries(statuses), { 200: total }, 'every request answered 200')
  t.equal(stats.refreshReplays, 0, 'zero refresh-token replays')
  t.equal(stats.revokedGrants, 0, 'zero revoked grants')
  t.same([...seen.orders], [ORDERS], 'the orders upstream saw only orders tokens')
  t.same([...seen.reports], [REPORTS], 'the reports upstream saw only reports tokens')
  t.same([...seen.api], ['(none)'], 'the /api upstream saw only the login token')
  // First lifetime: orders and reports minted; each later one: all three refreshed once.
  const expected = 2 + 3 * (LIFETIMES - 1)
  t.equal(
    stats.refreshGrants,
    expected,
    `${stats.refreshGrants} refresh grants: one per audience per lifetime over ${LIFETIMES} lifetimes`,
  )
})

t.test(
  'the same storm with the lock keyed per route audience revokes the grant (the test can fail)',
  async (t) => {
    const { statuses, stats } = await storm('per-audience')
    const failures = [...statuses].filter(([s]) => s !== 200).reduce((a, [, n]) => a + n, 0)
    t.ok(stats.refreshReplays > 0, `${stats.refreshReplays} replayed refresh tokens`)
    t.ok(stats.revokedGrants > 0, `${stats.revokedGrants} revoked grants`)
    t.ok(failures > 0, `${failures} failed requests`)
  },
)

t.test(
  'a token revoked mid-storm is replaced once and the retry hides it from every browser request',
  async (t) => {
    const { statuses, stats, seen, refusals, carried, retries } = await storm('single-flight', {
      revokeMidway: true,
    })
    const total = [...statuses.values()].reduce((a, b) => a + b, 0)
    t.same(Object.fromEntries(statuses), { 200: total }, `all ${total} requests answered 200`)
    t.ok(refusals > 0, `${refusals} requests refused by the orders upstream`)
    t.ok(
      retries >= refusals && retries <= carried,
      `each refused request replayed once (${retries} replays for ${refusals} refusals)`,
    )
    t.equal(stats.refreshReplays, 0)
    t.equal(stats.revokedGrants, 0)
    // Lifetimes: the first mints orders and reports; the revocation costs one orders
    // refresh; the two after it refresh all three.
    t.equal(stats.refreshGrants, 2 + 1 + 3 * (LIFETIMES - 2), `${stats.refreshGrants} refresh grants`)
    t.same(
      [...seen.orders].filter((a) => a !== '(inactive)'),
      [ORDERS],
      'the orders upstream saw only orders tokens',
    )
  },
)
