import type { Test } from 'tap'
import type { TestClock } from './gateway.js'
import { apiCall } from './login.js'
import { type ReplicaSet, type StormAnswer, storm } from './replicas.js'

export interface FailoverStormOptions {
  readonly set: ReplicaSet
  /** The gateways' clock: each expiry the storm crosses is one `lifetimeMs` step of it. */
  readonly clock: TestClock
  readonly lifetimeMs: number
  /** Kills the store's primary, resolving once a replica has taken over. */
  readonly failover: () => Promise<void>
  /** Every error must come within this long after the kill, ms. */
  readonly errorWindowMs: number
  /** The storm gives up after this long, ms, and the test then fails. */
  readonly hardStopMs: number
}

/**
 * Thirty-two request loops across the replica set, in phases each ended by
 * enough 200s: warm up; cross an expiry; cross another and fail the store
 * over at once, so the refresh it starts meets the failover; recover
 * (`/readyz` reports the outage and the recovery by itself); cross two more
 * expiries on the promoted replica. Then asserts what must hold however long
 * the failover takes: only 200 and 503, every 503 with Retry-After and
 * inside the failover window, `/readyz` back to 200, the same session after,
 * zero refresh tokens replayed, zero grants revoked, one refresh per expiry.
 */
export async function failoverStorm(t: Test, options: FailoverStormOptions): Promise<void> {
  const { set, clock, lifetimeMs } = options
  const quota = [100, 100, 0, 150, 150, 150]
  let phase = 0
  let ok = 0
  let killedAt = 0
  let promotedAt = 0
  let recovered = false
  const readiness: number[] = []
  const hardStop = Date.now() + options.hardStopMs
  const killing: Promise<void>[] = []
  const onAnswer = (answer: StormAnswer) => {
    if (answer.status === 200) ok++
    if (phase === 2) {
      if (recovered && ok >= 100) {
        phase = 3
        ok = 0
        clock.advance(lifetimeMs)
      }
      return
    }
    if (phase >= quota.length || ok < quota[phase]!) return
    ok = 0
    phase++
    if (phase === 1 || phase === 4 || phase === 5) clock.advance(lifetimeMs)
    if (phase === 2) {
      clock.advance(lifetimeMs)
      killedAt = Date.now()
      killing.push(
        (async () => {
          await options.failover()
          promotedAt = Date.now()
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
    // A loop, not Math.min(...): a storm that fails throughout has hundreds
    // of thousands of errors, more arguments than the stack holds.
    let first = Number.POSITIVE_INFINITY
    let last = Number.NEGATIVE_INFINITY
    for (const a of errors) {
      first = Math.min(first, a.at - killedAt)
      last = Math.max(last, a.at - killedAt)
    }
    t.ok(first >= 0, `no error before the kill (first ${first} ms after it)`)
    t.ok(
      last <= options.errorWindowMs,
      `errors confined to the failover window (last ${last} ms after the kill, promoted after ${promotedAt - killedAt} ms)`,
    )
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
}
