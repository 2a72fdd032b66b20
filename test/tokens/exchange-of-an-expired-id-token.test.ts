/**
 * A `token: exchange` route whose subject is the ID token, once that ID
 * token has expired, against the dev IdP's exchange grant. It used to end
 * the whole session ("the token to exchange expired and there is no
 * refresh token", though there was one), after redeeming the refresh token
 * for nothing. Now only that route is refused (403 token_exchange_refused,
 * saying why), the session and every other route carry on, a log line says
 * so, and the refresh token is redeemed for the subject only while a
 * refresh may bring a new ID token. The gateway runs on a TestClock; the
 * IdP on the real one, so moving the clock also moves the gateway ahead of
 * the IdP.
 */
import t, { type Test } from 'tap'
import type { DevIdpOptions, DevTokenExchange } from '../../dev/idp.js'
import type { ExchangeConfig } from '../../src/config/types.js'
import { sessionRefOf } from '../helpers/app.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'

const LEDGER = 'https://ledger.example'
const AUDIT = 'https://audit.example'
const byIdToken = (audience: string): ExchangeConfig => ({
  subjectToken: 'id_token',
  audience,
  scopes: [],
  grant: 'token-exchange',
})
const EXCHANGE: DevTokenExchange = {
  audiences: { [LEDGER]: { scopes: ['ledger.read'] }, [AUDIT]: {} },
}

interface Setup {
  readonly idp?: Partial<Omit<DevIdpOptions, 'clients'>>
  readonly subjectToken?: ExchangeConfig['subjectToken']
  readonly oidc?: { readonly authorizationParams: Record<string, string> }
}

/** `/api` forwards the login token; `/ledger` and `/audit` exchange the ID token (by default). */
function stack(t: Test, setup: Setup = {}): Promise<ObservedStack> {
  const exchange = (audience: string) => ({
    ...byIdToken(audience),
    subjectToken: setup.subjectToken ?? 'id_token',
  })
  return startObservedStack(t, {
    idp: { idTokenTtl: 120, tokenExchange: EXCHANGE, ...setup.idp },
    routes: (upstream) => [
      route('/api', upstream),
      route('/ledger', upstream, { token: 'exchange', exchange: exchange(LEDGER) }),
      route('/audit', upstream, { token: 'exchange', exchange: exchange(AUDIT) }),
    ],
    ...(setup.oidc ? { config: { oidc: setup.oidc } } : {}),
  })
}

async function idTokenOf(s: ObservedStack, jar: CookieJar): Promise<string | undefined> {
  const ref = sessionRefOf(s.gateway.app, jar.get(s.gateway.url, 'gatehouse')!)
  return (await s.gateway.app.gatehouse.stores.sessions.get(ref, s.clock.now()))?.tokens.idToken
}

const refusals = (s: ObservedStack) => s.lines.filter((l) => l.msg.startsWith('token exchange not attempted'))

t.test(
  'an IdP that sends no ID token at refresh: one refresh, then the route answers 403 and the session stays',
  async (t) => {
    const s = await stack(t, { idp: { quirks: { noIdTokenOnRefresh: true } } })
    const { jar } = await login(s.gateway.url)
    const loginIdToken = await idTokenOf(s, jar)
    const call = (path: string) => apiCall(jar, `${s.gateway.url}${path}`)

    s.clock.advance(61_000)
    t.equal((await call('/ledger/a')).status, 200, 'exchanged while the ID token lasts')
    t.equal(s.idp.stats.refreshGrants, 0, 'not due yet: no refresh')

    // Past the ID token's expiry (120 s) and any clock tolerance.
    s.clock.advance(91_000)
    const refused = await call('/ledger/b')
    t.equal(refused.status, 403, 'only this route is refused')
    t.equal(refused.json().error, 'token_exchange_refused')
    t.match(
      refused.json().message,
      /ID token to exchange .* has expired, and the identity provider sent no new one/,
    )
    t.match(refused.json().message, /The session stays/)
    t.equal(s.idp.stats.refreshGrants, 1, 'one refresh, in case it brought a new ID token')
    t.equal(await idTokenOf(s, jar), loginIdToken, 'it did not (the quirk): the login ID token is kept')

    t.equal((await call('/api/a')).status, 200, 'the login token still works')
    t.equal((await call('/auth/user')).status, 200, 'the session stays')
    t.equal((await call('/ledger/c')).status, 403, 'refused again')
    t.equal((await call('/audit/a')).status, 403, 'and on every route that exchanges the ID token')
    t.equal(s.idp.stats.refreshGrants, 1, 'without redeeming the refresh token again')

    s.clock.advance(61_000)
    t.equal((await call('/api/b')).status, 200, 'the login token is refreshed when due')
    t.equal((await call('/ledger/d')).status, 403)
    t.equal(s.idp.stats.refreshGrants, 2, 'by /api only')
    t.equal(s.idp.stats.tokenExchanges, 1, 'no expired ID token went to the IdP')
    t.equal(s.idp.stats.refreshReplays, 0)
    t.equal(s.idp.stats.revokedGrants, 0)

    t.equal(refusals(s).length, 4, 'one line per refusal')
    t.match(refusals(s)[0], {
      level: 40,
      code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
      audience: LEDGER,
      msg: /the ID token to exchange has expired, and the identity provider sent no new one at refresh.*this route answers 403, the session stays/,
    })
    t.notOk(
      s.lines.some((l) => l.code === 'GATEHOUSE_ERR_SESSION_EXPIRED'),
      'no line says the session ended',
    )
    const counted = await s.metrics('gatehouse_token_exchanges_total')
    for (const line of [
      `gatehouse_token_exchanges_total{outcome="success",audience="${LEDGER}",idp="default"} 1`,
      `gatehouse_token_exchanges_total{outcome="subject_expired",audience="${LEDGER}",idp="default"} 3`,
      `gatehouse_token_exchanges_total{outcome="subject_expired",audience="${AUDIT}",idp="default"} 1`,
    ])
      t.ok(counted.includes(line), line)
  },
)

t.test(
  'a refresh that kept the ID token before it expired is not repeated by another route while it lasts',
  async (t) => {
    const s = await stack(t, { idp: { quirks: { noIdTokenOnRefresh: true } } })
    const { jar } = await login(s.gateway.url)
    // Due (5 s before its expiry at 120 s), not expired.
    s.clock.advance(116_000)
    t.equal((await apiCall(jar, `${s.gateway.url}/ledger/a`)).status, 200)
    t.equal(s.idp.stats.refreshGrants, 1, 'the due ID token got its refresh')
    t.equal((await apiCall(jar, `${s.gateway.url}/audit/a`)).status, 200, 'exchanged while it lasts')
    t.equal(s.idp.stats.refreshGrants, 1, 'no second refresh: the first kept it')
    t.equal(s.idp.stats.tokenExchanges, 2)
  },
)

t.test(
  'a gateway clock ahead of the IdP by more than the ID token lives: the route works, with no refresh',
  async (t) => {
    const s = await stack(t)
    // 125 s ahead: the login's ID token (120 s) arrives 5 s past its exp by
    // the gateway's clock, as oauth4webapi's 30 s tolerance accepts.
    s.clock.advance(125_000)
    const { jar } = await login(s.gateway.url)
    t.equal(
      (await apiCall(jar, `${s.gateway.url}/ledger/a`)).status,
      200,
      'the IdP, whose clock wrote exp, decides',
    )
    t.equal(s.idp.stats.refreshGrants, 0, 'the ID token is as new as the IdP makes them: no refresh')
    t.equal(s.idp.stats.tokenExchanges, 1)
    t.equal((await apiCall(jar, `${s.gateway.url}/api/a`)).status, 200)
    t.equal((await apiCall(jar, `${s.gateway.url}/auth/user`)).status, 200, 'the session stays')
    t.same(refusals(s), [])
  },
)

t.test(
  'without a refresh token: an expired ID token refuses its route only; an expired access token ends the session',
  async (t) => {
    // A strict IdP issues no refresh token without prompt=consent (OIDC Core §11).
    const noRefreshToken = { authorizationParams: {} }
    t.test('id_token subject, expiring before the access token (as Entra ID lets it)', async (t) => {
      const s = await stack(t, { oidc: noRefreshToken, idp: { idTokenTtl: 20, accessTokenTtl: 120 } })
      const { jar } = await login(s.gateway.url)
      s.clock.advance(51_000)
      const refused = await apiCall(jar, `${s.gateway.url}/ledger/a`)
      t.equal(refused.status, 403)
      t.match(refused.json(), {
        error: 'token_exchange_refused',
        message: /has expired, and the session has no refresh token to get a new one with/,
      })
      t.equal((await apiCall(jar, `${s.gateway.url}/api/a`)).status, 200, 'the access token still works')
      t.equal((await apiCall(jar, `${s.gateway.url}/auth/user`)).status, 200, 'the session stays')
      t.equal(s.idp.stats.refreshGrants, 0)
      t.equal(refusals(s).length, 1)
    })
    t.test('access_token subject: the session is over, as for any route', async (t) => {
      const s = await stack(t, { oidc: noRefreshToken, subjectToken: 'access_token' })
      const { jar } = await login(s.gateway.url)
      t.equal((await apiCall(jar, `${s.gateway.url}/ledger/a`)).status, 200)
      s.clock.advance(61_000)
      const ended = await apiCall(jar, `${s.gateway.url}/ledger/b`)
      t.equal(ended.status, 401)
      t.equal(ended.json().error, 'session_expired')
      t.equal((await apiCall(jar, `${s.gateway.url}/auth/user`)).status, 401, 'the session is gone')
    })
  },
)

t.test(
  'access_token subject renewed dead on arrival (expires_in 1): 503, and the session stays, as on a plain route',
  async (t) => {
    const s = await stack(t, { subjectToken: 'access_token', idp: { accessTokenTtl: 1 } })
    const { jar } = await login(s.gateway.url)
    s.idp.resetStats()
    const answer = await apiCall(jar, `${s.gateway.url}/ledger/a`)
    t.equal(answer.status, 503)
    t.match(answer.json(), {
      error: 'token_refresh_unavailable',
      message: /expired before it could be exchanged/,
    })
    t.equal(s.idp.stats.refreshGrants, 1, 'one redemption')
    t.equal(s.idp.stats.refreshReplays, 0)
    t.equal((await apiCall(jar, `${s.gateway.url}/auth/user`)).status, 200, 'the session stays')
  },
)
