/**
 * `token: exchange` routes against the dev IdP's token-exchange grant: the
 * upstream gets a token for its own audience, exchanged once per subject
 * token and lifetime, and a refused exchange costs that route only.
 */
import t from 'tap'
import type { ExchangeConfig } from '../../src/config/types.js'
import {
  type AudienceStack,
  audiencesSeen,
  LEDGER,
  ORDERS,
  STACK_EXCHANGE,
  startAudienceStack,
} from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import type { LogLine } from '../helpers/observed-stack.js'

const TTL_S = 60
const exchangeTo = (audience: string, extra: Partial<ExchangeConfig> = {}): ExchangeConfig => ({
  subjectToken: 'access_token',
  audience,
  scopes: [],
  grant: 'token-exchange',
  ...extra,
})
const bearer = (stack: AudienceStack, i: number) =>
  stack.upstreams.ledger!.requests.at(i)!.authorization!.slice(7)

t.test('the ledger route forwards a token exchanged for its audience, once per lifetime', async (t) => {
  const clock = new TestClock()
  const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: TTL_S, gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.resetStats()

  for (const path of ['/ledger/a', '/api/a', '/ledger/b', '/orders/a', '/ledger/c']) {
    t.equal((await apiCall(stack.jar, `${url}${path}`)).status, 200, path)
  }
  t.equal(stack.idp.stats.tokenExchanges, 1, 'one exchange, then the cached token')
  t.same([...(await audiencesSeen(stack.idp, stack.upstreams.ledger!))], [LEDGER], 'aud is the ledger')
  t.same([...(await audiencesSeen(stack.idp, stack.upstreams.api))], ['(none)'], 'the login token upstream')
  t.same([...(await audiencesSeen(stack.idp, stack.upstreams.orders))], [ORDERS])
  const first = bearer(stack, 0)
  t.match(await stack.idp.describe(first), { sub: 'alice', aud: LEDGER, scope: 'ledger.read' })

  // The next lifetime: the login token is refreshed first, then exchanged once.
  clock.advance(TTL_S * 1000 + 1_000)
  for (const path of ['/ledger/d', '/ledger/e', '/api/b']) {
    t.equal((await apiCall(stack.jar, `${url}${path}`)).status, 200, path)
  }
  t.equal(stack.idp.stats.tokenExchanges, 2)
  t.equal(stack.idp.stats.refreshGrants, 2, 'orders minted once, the login token refreshed once')
  t.equal(stack.idp.stats.refreshReplays, 0)
  t.not(bearer(stack, -1), first, 'a new exchanged token')
  const metrics = await stack.apps[0]!.gatehouse.metrics.registry.metrics()
  t.match(metrics, `gatehouse_token_exchanges_total{outcome="success",audience="${LEDGER}",idp="default"} 2`)
})

t.test('a refreshed subject token makes the exchanged token stale, though it has not expired', async (t) => {
  const clock = new TestClock()
  const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: TTL_S, gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.resetStats()
  // Exchanged half a lifetime after login, the ledger token outlives the login token by as much.
  clock.advance((TTL_S / 2) * 1000)
  t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, 200)
  const exchanged = bearer(stack, 0)
  clock.advance((TTL_S / 2) * 1000 + 1_000)
  t.equal((await apiCall(stack.jar, `${url}/api/a`)).status, 200, 'the login token is refreshed')
  t.equal(stack.idp.stats.refreshGrants, 1)
  t.ok(await stack.idp.isActive(exchanged), 'the exchanged token is still good at the IdP')
  t.equal((await apiCall(stack.jar, `${url}/ledger/b`)).status, 200)
  t.equal(stack.idp.stats.tokenExchanges, 2, 'exchanged again, from the new subject')
  t.not(bearer(stack, -1), exchanged, 'the token from the old subject is not forwarded')
  t.equal(stack.idp.stats.refreshGrants, 1, 'no refresh for it')
})

t.test('refusals answer 403 on that route only, with the OAuth error in the log', async (t) => {
  const lines: LogLine[] = []
  const stack = await startAudienceStack({
    logLevel: 'info',
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } },
    exchange: {
      idp: {
        audiences: { ...STACK_EXCHANGE.audiences, 'https://audit.example': {} },
        clients: { 'gatehouse-test': [LEDGER] },
      },
      routes: [
        { path: '/unknown', exchange: exchangeTo('https://unknown.example') },
        { path: '/overscoped', exchange: exchangeTo(LEDGER, { scopes: ['ledger.write'] }) },
        { path: '/audit', exchange: exchangeTo('https://audit.example') },
      ],
    },
  })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  const expected = {
    '/unknown': 'invalid_target',
    '/overscoped': 'invalid_scope',
    '/audit': 'unauthorized_client',
  }
  for (const [path, oauthError] of Object.entries(expected)) {
    const answer = await apiCall(stack.jar, `${url}${path}/x`)
    t.equal(answer.status, 403, path)
    t.equal(answer.json().error, 'token_exchange_refused', path)
    t.match(answer.json().message, oauthError, `${path}: the message names ${oauthError}`)
    const logged = lines.find(
      (l) => l.msg.startsWith('token exchange refused') && l.oauthError === oauthError,
    )
    t.match(logged, { code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED', oauthError }, `${path}: logged`)
  }
  t.equal((await apiCall(stack.jar, `${url}/ledger/x`)).status, 200, 'the allowed exchange still works')
  t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200, 'the login token still works')
  t.equal((await apiCall(stack.jar, `${url}/auth/user`)).status, 200, 'the session stays')
  t.equal(stack.idp.stats.revokedGrants, 0)
  const log = JSON.stringify(lines)
  const tokens = Object.values(stack.upstreams).flatMap((u) =>
    u.requests.map((r) => r.authorization!.slice(7)),
  )
  for (const token of new Set(tokens)) t.notOk(log.includes(token), 'no token in the log')
  const metrics = await stack.apps[0]!.gatehouse.metrics.registry.metrics()
  t.match(
    metrics,
    'gatehouse_token_exchanges_total{outcome="unauthorized_client",audience="https://audit.example",idp="default"} 1',
  )
})

t.test('an ID token can be the subject, and on-behalf-of goes by jwt-bearer', async (t) => {
  const stack = await startAudienceStack({
    exchange: {
      idp: { audiences: { ...STACK_EXCHANGE.audiences, 'api://graph': { scopes: ['user.read'] } } },
      routes: [
        { path: '/by-id', exchange: exchangeTo(LEDGER, { subjectToken: 'id_token' }) },
        {
          path: '/obo',
          exchange: { subjectToken: 'access_token', scopes: ['api://graph/.default'], grant: 'jwt-bearer' },
        },
      ],
    },
  })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.resetStats()
  t.equal((await apiCall(stack.jar, `${url}/by-id/x`)).status, 200)
  t.match(await stack.idp.describe(bearer(stack, -1)), { aud: LEDGER, sub: 'alice' })
  t.equal((await apiCall(stack.jar, `${url}/obo/x`)).status, 200)
  t.match(await stack.idp.describe(bearer(stack, -1)), {
    aud: 'api://graph',
    sub: 'alice',
    scope: 'user.read',
  })
  t.equal(stack.idp.stats.onBehalfOf, 1)
  t.equal(stack.idp.stats.tokenExchanges, 2)
})
