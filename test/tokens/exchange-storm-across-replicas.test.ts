import t from 'tap'
import type { Coordination } from '../../src/tokens/refresh-scope.js'
import { audiencesSeen, LEDGER, ORDERS, REPORTS, startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'

const LOOPS = 72
const LIFETIMES = 4
/** Seconds, as the IdP issues them; the gateways' clock crosses one per phase. */
const TTL_S = 300
/** Requests each upstream must answer within a lifetime before the clock crosses to the next. */
const PER_PHASE = 40
/** The login token, a token per resource (two), and a token exchanged for the ledger. */
const PATHS = ['/api', '/orders', '/reports', '/ledger'] as const

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Three replicas on one Redis, one session, 72 loops spread over the login
 * token's route, two per-resource routes and an exchange route, across four
 * access-token lifetimes that the gateways' shared clock crosses mid-storm.
 * Mirrors audience-storm-across-replicas, with the exchange route added.
 */
async function storm(coordination: Coordination, paths: readonly string[] = PATHS) {
  const clock = new TestClock()
  const stack = await startAudienceStack({
    replicas: 3,
    redisUrl: redis.url,
    keyPrefix: `${redis.prefix}exchange:${coordination}:${paths.length}:`,
    accessTokenTtl: TTL_S,
    exchange: {},
    gateway: { now: clock.now, coordination },
  })
  stack.idp.resetStats()
  const statuses = new Map<number, number>()
  /** What the non-200 answers said, for the message of a failure. */
  const errors = new Set<string>()
  let next = 0
  let stop = false
  const loops = Array.from({ length: LOOPS }, async (_, i) => {
    while (!stop) {
      const url = stack.urls[next++ % stack.urls.length]!
      const answer = await apiCall(stack.jar, `${url}${paths[i % paths.length]}/x`)
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
      if (answer.status !== 200) errors.add(`${answer.status} ${answer.text.slice(0, 160)}`)
    }
  })
  const stormedPaths = new Set(paths.map((p) => p.slice(1)))
  const upstreams = Object.entries(stack.upstreams)
    .filter(([name]) => stormedPaths.has(name))
    .map(([, upstream]) => upstream)
  const exchangesPerLifetime: number[] = []
  for (let phase = 0; phase < LIFETIMES; phase++) {
    const before = stack.idp.stats.tokenExchanges
    if (phase > 0) clock.advance(TTL_S * 1000 + 1_000)
    // Each lifetime lasts until every route has been stormed in it, however loaded the machine.
    const marks = upstreams.map((u) => u.requests.length + PER_PHASE)
    const deadline = Date.now() + 30_000
    const stormed = () => upstreams.every((u, i) => u.requests.length >= marks[i]!)
    // A revoked grant ends the session: no later request reaches an upstream.
    while (!stormed() && stack.idp.stats.revokedGrants === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    exchangesPerLifetime.push(stack.idp.stats.tokenExchanges - before)
  }
  stop = true
  await Promise.all(loops)
  const seen = {
    api: await audiencesSeen(stack.idp, stack.upstreams.api),
    orders: await audiencesSeen(stack.idp, stack.upstreams.orders),
    reports: await audiencesSeen(stack.idp, stack.upstreams.reports),
    ledger: await audiencesSeen(stack.idp, stack.upstreams.ledger!),
  }
  const stats = { ...stack.idp.stats, byAudience: { ...stack.idp.stats.byAudience } }
  await stack.close()
  return { statuses, stats, seen, exchangesPerLifetime, errors: [...errors] }
}

t.test(
  'one session storms a per-resource route and an exchange route at once on three replicas: every request 200, one exchange per lifetime',
  async (t) => {
    const { statuses, stats, seen, exchangesPerLifetime, errors } = await storm('single-flight')
    const total = [...statuses.values()].reduce((a, b) => a + b, 0)
    t.ok(total >= PATHS.length * PER_PHASE * LIFETIMES, `${total} requests`)
    t.same(Object.fromEntries(statuses), { 200: total }, `every request answered 200 ${errors.join('; ')}`)
    t.equal(stats.refreshReplays, 0, 'zero refresh-token replays')
    t.equal(stats.revokedGrants, 0, 'zero revoked grants')
    t.same(
      exchangesPerLifetime,
      Array(LIFETIMES).fill(1),
      'exactly one exchange per lifetime, not one per replica',
    )
    t.same(stats.byAudience, { [LEDGER]: LIFETIMES }, 'every exchange was for the ledger')
    t.same([...seen.ledger], [LEDGER], 'the ledger upstream saw only ledger tokens')
    t.same([...seen.orders], [ORDERS], 'the orders upstream saw only orders tokens')
    t.same([...seen.reports], [REPORTS], 'the reports upstream saw only reports tokens')
    t.same([...seen.api], ['(none)'], 'the /api upstream saw only the login token')
    // First lifetime: orders and reports minted; each later one: all three refreshed once.
    t.equal(stats.refreshGrants, 2 + 3 * (LIFETIMES - 1), `${stats.refreshGrants} refresh grants`)
  },
)

t.test(
  'the same storm with the lock keyed per route replays the refresh token (the test can fail)',
  async (t) => {
    const { statuses, stats } = await storm('per-audience')
    const failures = [...statuses].filter(([s]) => s !== 200).reduce((a, [, n]) => a + n, 0)
    t.ok(stats.refreshReplays > 0, `${stats.refreshReplays} replayed refresh tokens`)
    t.ok(stats.revokedGrants > 0, `${stats.revokedGrants} revoked grants`)
    t.ok(failures > 0, `${failures} failed requests`)
  },
)

t.test(
  'without the flight and the lock, the replicas exchange many times in one lifetime (the count can fail)',
  async (t) => {
    // The exchange route alone: in the first lifetime nothing is refreshed, so nothing is replayed
    // and only the exchanges race.
    const { exchangesPerLifetime } = await storm('none', ['/ledger'])
    t.ok(exchangesPerLifetime[0]! > 1, `${exchangesPerLifetime[0]} exchanges in the first lifetime`)
  },
)
