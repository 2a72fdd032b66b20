import t from 'tap'
import { LEDGER, LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

/**
 * A session of a provider a reload removed can exchange nothing: its
 * subject token would go to a provider the gateway no longer trusts, or to
 * none. Its first call to a `token: exchange` route answered 401
 * session_expired, rightly, but was counted and logged as an exchange the
 * IdP was unavailable for (`gatehouse_token_exchanges_total{outcome=
 * "unavailable"}`, a warning "identity provider unavailable"), an outage
 * alert for an IdP nobody asked, and the session's record stayed in the
 * store, live for any copy of its cookie, where a route refreshing for its
 * own token ends the record.
 */

t.test("a removed provider's session at an exchange route: over, and no IdP outage", async (t) => {
  const logs = new LogLines()
  const stack = await startReloadable(
    t,
    (upstream) => [
      route('/api', upstream),
      route('/ledger', upstream, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
    ],
    {
      logStream: logs.stream,
      idp: { tokenExchange: STACK_EXCHANGE },
      input: (issuer) => ({
        logLevel: 'info',
        identityProviders: [
          { name: 'a', issuer },
          { name: 'b', issuer },
        ],
      }),
    },
  )
  const { jar } = await login(stack.url, { params: { idp: 'b' } })
  // The same cookie elsewhere: the record, not this browser's cookie, says whether the session lives.
  const copy = new CookieJar()
  copy.set(stack.url, 'gatehouse', jar.get(stack.url, 'gatehouse')!)

  const issuer = stack.idp.issuer
  stack.configMap.write(configText({ ...stack.input, identityProviders: [{ name: 'a', issuer }] }))
  t.ok(await until(() => stack.running.config.identityProviders.length === 1), 'the reload applies')
  stack.idp.resetStats()
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 200, 'its login token serves while it lasts')

  const refused = await apiCall(jar, `${stack.url}/ledger/x`)
  t.equal(refused.status, 401)
  t.match(refused.json(), { error: 'session_expired', message: /no longer configured/ })
  t.equal(stack.idp.stats.tokenExchanges, 0, 'no subject token went anywhere')
  t.equal((await apiCall(copy, `${stack.url}/api/x`)).status, 401, 'the session is over, not only the cookie')

  const metrics = await stack.running.app.gatehouse.metrics.registry.metrics()
  t.notMatch(metrics, `gatehouse_token_exchanges_total{outcome="unavailable",audience="${LEDGER}"`)
  t.notOk(
    logs.lines.find((line) => /token exchange/.test(line.msg)),
    'no exchange is logged: none was asked of any IdP',
  )
  t.ok(
    logs.lines.find(
      (line) => line.code === 'GATEHOUSE_ERR_SESSION_EXPIRED' && /no longer configured/.test(line.msg),
    ),
    'the session ended, and the line says why',
  )
})
