import t from 'tap'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startTwoIdps } from '../helpers/two-idps.js'

const TTL_S = 3
const RUN_MS = TTL_S * 1000 * 3 + 1_500
const LOOPS = 24

const redis = await startRedis()
t.teardown(() => redis.stop())

t.test(
  'three replicas, two IdPs: each session storms its own routes; every answer 200, no replay at either IdP',
  async (t) => {
    const set = await startTwoIdps(t, {
      store: redis.url,
      keyPrefix: `${redis.prefix}two-idps:`,
      count: 3,
      accessTokenTtl: TTL_S,
      config: { refreshBefore: 500, refreshWait: 10_000 },
    })
    const first = set.urls[0]!
    const corp = (await login(first, { params: { idp: 'corp' } })).jar
    const partner = (await login(first, { params: { idp: 'partner' } })).jar
    // Behind a real load balancer the replicas share one origin; here each has a port.
    for (const jar of [corp, partner])
      for (const url of set.urls) jar.set(url, 'gatehouse', jar.get(first, 'gatehouse')!)
    set.corp.idp.resetStats()
    set.partner.idp.resetStats()
    set.corp.api.clear()
    set.partner.api.clear()

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
      ...Array.from({ length: LOOPS }, () => loop(corp, ['/api/corp', '/api/any'])),
      // Partner's session also uses a per-resource route: two tokens from one rotating refresh token.
      ...Array.from({ length: LOOPS }, () =>
        loop(partner, ['/api/partner', '/api/any', '/api/partner-reports']),
      ),
    ])

    const total = [...statuses.values()].reduce((a, b) => a + b, 0)
    const failed = [...statuses].filter(([key]) => !key.startsWith('200 '))
    t.ok(total > LOOPS * 6, `${total} requests over three replicas`)
    t.same(failed, [], 'every answer 200')
    // A 3 s token is used for 2 s (the IdP's whole-second exp may lose one).
    const lifetimes = Math.ceil(RUN_MS / ((TTL_S - 1) * 1000))
    // Partner refreshes two tokens per lifetime: the login's and the resource's.
    for (const [{ name, idp }, tokens] of [
      [set.corp, 1],
      [set.partner, 2],
    ] as const) {
      t.equal(idp.stats.refreshReplays, 0, `${name}: zero refresh-token replays`)
      t.equal(idp.stats.revokedGrants, 0, `${name}: zero revoked grants`)
      const { refreshGrants } = idp.stats
      // At most one per token and lifetime (plus one at the edge); at least the login token's,
      // which every request of the session needs. A loaded machine may leave a route unasked
      // for a whole lifetime, so the route token's own count is bounded above only.
      t.ok(
        refreshGrants >= lifetimes - 1 && refreshGrants <= tokens * (lifetimes + 1),
        `${name}: ${refreshGrants} refreshes for ${lifetimes} lifetimes of ${tokens} token(s), at most one each`,
      )
    }
    const tokens = (requests: typeof set.corp.api.requests) => new Set(requests.map((r) => r.authorization))
    const corpTokens = tokens(set.corp.api.requests)
    const partnerTokens = tokens(set.partner.api.requests)
    t.ok(corpTokens.size >= 2, `corp's API saw ${corpTokens.size} tokens as they rotated`)
    t.equal(
      [...corpTokens].filter((token) => partnerTokens.has(token)).length,
      0,
      'no token reached both APIs',
    )
    const last = set.partner.api.requests.at(-1)!.authorization!.slice('Bearer '.length)
    t.ok(await set.partner.idp.isActive(last), "partner's API got partner's token")
    t.notOk(await set.corp.idp.isActive(last), 'never one of corp')
  },
)
