import t, { type Test } from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const PARALLEL = 200

async function raceAcrossExpiry(t: Test, coordination: 'single-flight' | 'none') {
  const clock = new TestClock()
  const stack = await startStack(t, { accessTokenTtl: 60, gateway: { now: clock.now, coordination } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const first = await apiCall(jar, `${base}/api/orders`)
  const before = stack.upstream.requests.at(-1)!.authorization
  stack.idp.resetStats()
  stack.upstream.clear()

  // Past the access token's expiry for the gateway, without sleeping.
  clock.advance(61_000)
  const responses = await Promise.all(
    Array.from({ length: PARALLEL }, () => apiCall(jar, `${base}/api/orders`)),
  )
  const tokens = new Set(stack.upstream.requests.map((r) => r.authorization))
  return { stack, clock, jar, first, before, responses, tokens, stats: { ...stack.idp.stats } }
}

t.test(`${PARALLEL} parallel requests across an expiry make exactly one refresh`, async (t) => {
  const { stack, clock, jar, first, before, responses, tokens, stats } = await raceAcrossExpiry(
    t,
    'single-flight',
  )
  t.equal(first.status, 200)
  t.same(
    responses.filter((r) => r.status !== 200).map((r) => r.status),
    [],
    'zero non-200 responses',
  )
  t.equal(stats.refreshGrants, 1, 'exactly one refresh grant at the IdP')
  t.equal(stats.refreshReplays, 0, 'zero "refresh token already used"')
  t.equal(stats.revokedGrants, 0, 'zero revoked grants')
  t.equal(tokens.size, 1, 'every request forwarded the same new token')
  t.not([...tokens][0], before, 'and it is not the expired one')
  t.ok(await stack.idp.isActive([...tokens][0]!.slice(7)))

  // The rotated refresh token was stored: the next expiry refreshes again, cleanly.
  stack.idp.resetStats()
  clock.advance(61_000)
  const again = await Promise.all(
    Array.from({ length: 50 }, () => apiCall(jar, `${stack.gateway.url}/api/orders`)),
  )
  t.same(new Set(again.map((r) => r.status)), new Set([200]), 'a second expiry is as clean')
  t.equal(stack.idp.stats.refreshGrants, 1)
  t.equal(stack.idp.stats.refreshReplays, 0)
})

t.test(
  'the same race without single-flight replays the rotated refresh token (the test can fail)',
  async (t) => {
    const { responses, stats } = await raceAcrossExpiry(t, 'none')
    const failed = responses.filter((r) => r.status !== 200).length
    // What the single-flight test guards against: the IdP sees the rotated
    // refresh token again, revokes the grant, and users are logged out.
    t.ok(stats.refreshReplays > 0, `uncoordinated: ${stats.refreshReplays} replayed refresh tokens`)
    t.ok(failed > 0, `uncoordinated: ${failed} of ${responses.length} requests failed`)
  },
)
