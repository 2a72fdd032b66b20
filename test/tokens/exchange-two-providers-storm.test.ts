/**
 * The storm of the several-providers work with a per-resource route and an
 * exchange route added: three replicas, two IdPs, a session of each, every
 * session on its provider's route, a per-resource route and an exchange
 * route at once, in real time across several token lifetimes.
 */
import t, { type Test } from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import type { Coordination } from '../../src/tokens/user-tokens.js'
import { audiencesSeen, LEDGER, LEDGER_EXCHANGE, ORDERS, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startTwoIdps } from '../helpers/two-idps.js'

const TTL_S = 3
const RUN_MS = TTL_S * 1000 * 3 + 1_500
const LOOPS = 18

const redis = await startRedis()
t.teardown(() => redis.stop())

/** Runs the storm; what each IdP saw, the answers, and what each upstream was sent. */
async function storm(t: Test, coordination: Coordination) {
  const orders = await startEchoUpstream()
  const ledger = await startEchoUpstream()
  t.teardown(async () => {
    await orders.close()
    await ledger.close()
  })
  const set = await startTwoIdps(t, {
    store: redis.url,
    keyPrefix: `${redis.prefix}exchange-two-idps:${coordination}:`,
    gateway: { coordination },
    count: 3,
    accessTokenTtl: TTL_S,
    idp: {
      resourceIndicators: { resources: { [ORDERS]: { scopes: ['orders.read'] } } },
      tokenExchange: STACK_EXCHANGE,
    },
    config: {
      refreshBefore: 500,
      refreshWait: 10_000,
      oidc: { scopes: ['openid', 'profile', 'offline_access', 'orders.read'] },
    },
    routes: () => [
      route('/orders', orders.url, { resource: ORDERS }),
      route('/ledger', ledger.url, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
    ],
  })
  const first = set.urls[0]!
  const corp = (await login(first, { params: { idp: 'corp' } })).jar
  const partner = (await login(first, { params: { idp: 'partner' } })).jar
  // Behind a real load balancer the replicas share one origin; here each has a port.
  for (const jar of [corp, partner])
    for (const url of set.urls) jar.set(url, 'gatehouse', jar.get(first, 'gatehouse')!)
  for (const { idp } of [set.corp, set.partner]) idp.resetStats()

  const statuses = new Map<string, number>()
  let next = 0
  const deadline = Date.now() + RUN_MS
  const loop = async (jar: CookieJar, paths: readonly string[]) => {
    while (Date.now() < deadline) {
      const n = next++
      const path = paths[n % paths.length]!
      const { status } = await apiCall(jar, `${set.urls[n % set.urls.length]}${path}`)
      const key = `${status} ${path}`
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
    }
  }
  await Promise.all([
    ...Array.from({ length: LOOPS }, () => loop(corp, ['/api/corp', '/orders/x', '/ledger/x'])),
    ...Array.from({ length: LOOPS }, () => loop(partner, ['/api/partner', '/orders/x', '/ledger/x'])),
  ])

  return { set, statuses, orders, ledger }
}

t.test(
  'three replicas, two IdPs, a per-resource and an exchange route per session: every answer 200, no replay, one exchange per lifetime',
  async (t) => {
    const { set, statuses, orders, ledger } = await storm(t, 'single-flight')
    const total = [...statuses.values()].reduce((a, b) => a + b, 0)
    t.ok(total > LOOPS * 20, `${total} requests over three replicas`)
    t.same(
      [...statuses].filter(([key]) => !key.startsWith('200 ')),
      [],
      'every answer 200',
    )
    // A 3 s token is used for 2 s (the IdP's whole-second exp may lose one).
    const lifetimes = Math.ceil(RUN_MS / ((TTL_S - 1) * 1000))
    // At most: every token loses the whole second and is refreshed
    // `refreshBefore` early, 1.5 s each, and each refreshed subject is
    // exchanged again, plus the first exchange. One per replica would be
    // three times as many.
    const most = Math.ceil(RUN_MS / ((TTL_S - 1) * 1000 - 500)) + 1
    for (const { name, idp } of [set.corp, set.partner]) {
      t.equal(idp.stats.refreshReplays, 0, `${name}: zero refresh-token replays`)
      t.equal(idp.stats.revokedGrants, 0, `${name}: zero revoked grants`)
      t.ok(
        idp.stats.tokenExchanges >= lifetimes - 1 && idp.stats.tokenExchanges <= most,
        `${name}: ${idp.stats.tokenExchanges} exchanges for ${lifetimes} lifetimes, one each, not one per replica`,
      )
      t.same(Object.keys(idp.stats.byAudience), [LEDGER], `${name}: exchanged for the ledger only`)
    }
    // Each upstream sees only its own audience, from either provider.
    const describe = async (upstream: typeof orders) => {
      const fromCorp = await audiencesSeen(set.corp.idp, upstream)
      const fromPartner = await audiencesSeen(set.partner.idp, upstream)
      return new Set([...fromCorp, ...fromPartner].filter((a) => a !== '(inactive)'))
    }
    t.same([...(await describe(orders))], [ORDERS], 'the orders upstream saw only orders tokens')
    t.same([...(await describe(ledger))], [LEDGER], 'the ledger upstream saw only ledger tokens')
  },
)

t.test(
  'the same storm with the lock keyed per route replays refresh tokens (the test can fail)',
  async (t) => {
    const { set, statuses } = await storm(t, 'per-audience')
    const replays = set.corp.idp.stats.refreshReplays + set.partner.idp.stats.refreshReplays
    const failed = [...statuses].filter(([key]) => !key.startsWith('200 ')).reduce((a, [, n]) => a + n, 0)
    t.ok(replays > 0, `${replays} replayed refresh tokens`)
    t.ok(failed > 0, `${failed} failed requests`)
  },
)
