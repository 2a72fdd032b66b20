/**
 * A client route's token is renewed `tokens.refreshBefore` before it
 * expires. A renewal the IdP could not serve (a 503, a hang) answered 503
 * `client_token_unavailable` on every instance, the lock holder's and its
 * waiters alike, although the token had seconds left and the IdP still
 * accepted it: with the default 30 s, any IdP blip in a token's last 30 s
 * took every client route down. Now the still-valid token is used until it
 * expires, as a session's is, and the failure's Retry-After still keeps the
 * IdP from being asked again meanwhile; so does a refusal of the gateway's
 * credentials, while a refusal of the route's scopes is still answered.
 * Against the real dev IdP (60 s tokens, refreshBefore 5 s) and two replicas
 * sharing a real Redis, on a hand-moved clock.
 */
import type { Test } from 'tap'
import t from 'tap'
import { retryAfterOf } from '../../src/errors.js'
import { CLIENT_ID, route, TestClock } from '../helpers/gateway.js'
import { apiCall, type JarResponse, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/** The catalogue's Retry-After of a failed fetch, ms: the gateway waits as long. */
const RETRY_AFTER = retryAfterOf('GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE')! * 1_000
/**
 * Past the fetch at 0: due (the token lives 59 s by the gateway's count, a
 * second short of expires_in, and is renewed 5 s before), with 3 s left.
 */
const DUE = 56_000
/** Past the token's expiry and the Retry-After of a failure at DUE. */
const EXPIRED = DUE + RETRY_AFTER + 1_000
const CALLS = 10
/** Between two calls: all of them fit in the token's last 3 s, with time to spare on a loaded machine. */
const STEP = 100

/** What the echo upstream saw of the forwarded token: a fingerprint, never the token. */
const fingerprint = (answer: JarResponse) =>
  answer.json<{ token: { fingerprint?: string } }>().token.fingerprint

/**
 * A signed-in user on one gateway (`idpTimeout` its IdP's timeout, ms) that
 * has fetched the client route's token, on a clock moved to DUE.
 */
async function heldOnOne(t: Test, idpTimeout = 3_000) {
  const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { idpTimeout } })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200)
  t.equal(stack.idp.stats.clientCredentialsGrants, 1)
  const held = stack.upstream.requests.at(-1)!.authorization!
  stack.clock.advance(DUE)
  const reports = () => apiCall(jar, `${base}/api/reports`)
  return { stack, held, reports }
}

/** CALLS calls, STEP apart, each forwarded with `held`. */
async function servedWith(t: Test, { stack, held, reports }: Awaited<ReturnType<typeof heldOnOne>>) {
  for (let i = 0; i < CALLS; i++) {
    t.equal((await reports()).status, 200, `call ${i + 1}: served`)
    t.equal(stack.upstream.requests.at(-1)!.authorization, held, 'with the held token')
    stack.clock.advance(STEP)
  }
  // Past the token's expiry, and the Retry-After of a failure at DUE.
  stack.clock.advance(EXPIRED - DUE - CALLS * STEP)
}

for (const fault of ['503', 'hang'] as const) {
  t.test(
    `IdP ${fault}: a due client token is used until it expires, one attempt per Retry-After`,
    async (t) => {
      const one = await heldOnOne(t, fault === 'hang' ? 400 : 3_000)
      const { stack, held, reports } = one
      stack.idp.setFault(fault)
      const before = stack.idp.stats.tokenRequests
      await servedWith(t, one)
      t.equal(stack.idp.stats.tokenRequests - before, 1, `${CALLS} calls within Retry-After: one attempt`)
      t.ok(await stack.idp.isActive(held.slice('Bearer '.length)), 'the IdP still accepts the held token')
      t.match(
        stack.lines.filter((l) => /^client-credentials token renewal failed/.test(l.msg)),
        [{ level: 40, code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE', reason: String }],
        'the failed attempt is logged once, with its reason, though no request failed',
      )

      const dead = await reports()
      t.equal(dead.status, 503, 'expired: 503')
      t.equal(dead.json().error, 'client_token_unavailable')
      t.equal(dead.headers.get('retry-after'), String(RETRY_AFTER / 1_000))
      t.equal(stack.idp.stats.tokenRequests - before, 2, 'after a new attempt')
    },
  )
}

/**
 * Two replicas on one Redis, whose `/api/reports` is a client route, the
 * token fetched at the first, the clock at DUE and the IdP failing so
 * (its timeout `idpTimeout`, ms).
 */
async function heldOnTwo(t: Test, name: string, fault: '503' | 'hang', idpTimeout: number) {
  const clock = new TestClock().freeze()
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: `${redis.prefix}${name}:`,
    accessTokenTtl: 60,
    now: clock.now,
    count: 2,
    refreshBefore: 5_000,
    oidc: { timeout: idpTimeout },
    routes: (to) => [
      route('/api/orders', to),
      route('/api/reports', to, { token: 'client', scopes: ['reports.read'] }),
    ],
  })
  t.teardown(() => set.close())
  const first = await apiCall(set.jar, `${set.urls[0]}/api/reports`)
  t.equal(first.status, 200)
  clock.advance(DUE)
  set.idp.setFault(fault)
  return { ...set, clock, held: fingerprint(first), before: set.idp.stats.tokenRequests }
}

t.test('both replicas use the shared still-valid token while the IdP answers 503', async (t) => {
  const { idp, urls, jar, clock, held, before } = await heldOnTwo(t, 'held-503', '503', 3_000)
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) => apiCall(jar, `${urls[i % 2]}/api/reports`)),
  )
  t.same(
    answers.map((a) => [a.status, fingerprint(a)]),
    answers.map(() => [200, held]),
    '40 calls over both replicas: the token fetched at the first, from the second too',
  )
  const attempts = idp.stats.tokenRequests - before
  t.ok(attempts >= 1 && attempts <= 2, `at most one attempt per replica (${attempts})`)

  clock.advance(EXPIRED - DUE)
  for (const url of urls) {
    const dead = await apiCall(jar, `${url}/api/reports`)
    t.equal(dead.status, 503, `${url}: expired, 503`)
    t.equal(dead.json().error, 'client_token_unavailable')
    t.equal(dead.headers.get('retry-after'), String(RETRY_AFTER / 1_000))
  }
})

t.test("a replica waiting on the other's renewal that hangs gets the held token too", async (t) => {
  const { idp, urls, jar, held, before } = await heldOnTwo(t, 'held-waiter', 'hang', 1_000)
  // One replica takes the lock and waits out the IdP's timeout; the other waits for its release.
  const answers = await Promise.all(urls.map((url) => apiCall(jar, `${url}/api/reports`)))
  t.same(
    answers.map((a) => [a.status, fingerprint(a)]),
    [
      [200, held],
      [200, held],
    ],
  )
  t.equal(idp.stats.tokenRequests - before, 1, 'one attempt: the waiter did not ask for itself')
})

t.test(
  "a refusal of the gateway's credentials leaves the still-valid token in use, as a session's",
  async (t) => {
    const one = await heldOnOne(t)
    const { stack, reports } = one
    await stack.idp.expireClientSecret(CLIENT_ID)
    const before = stack.idp.stats.tokenRequests
    await servedWith(t, one)
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'refused once, then not asked')
    t.equal(
      stack.lines.filter((l) => l.level === 50 && l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED').length,
      1,
      'the refusal is logged at error, with its hint',
    )

    const dead = await reports()
    t.equal(dead.status, 500, 'expired: the refusal answers')
    t.equal(dead.json().error, 'idp_client_refused')
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'within the back-off, without asking')
  },
)

t.test("a refusal of the route's scopes is answered, the held token notwithstanding", async (t) => {
  const { stack, reports } = await heldOnOne(t)
  stack.idp.answer('token', {
    status: 400,
    body: { error: 'invalid_scope', error_description: 'reports.read is no longer allowed' },
    grantType: 'client_credentials',
  })
  const refused = await reports()
  t.equal(refused.status, 403, "the IdP's word on the scopes, as a session's route token gets")
  t.equal(refused.json().error, 'client_token_refused')
})
