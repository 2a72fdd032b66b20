/**
 * With several identity providers, a `token: exchange` route exchanges at
 * the provider the session signed in with: its subject token means
 * nothing to another, and another must never see it.
 */
import t from 'tap'
import { LEDGER, LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { LogLines } from '../helpers/reloadable.js'
import { startTwoIdps } from '../helpers/two-idps.js'

t.test('each session exchanges at its own provider, and the token is that provider’s', async (t) => {
  const logs = new LogLines()
  const set = await startTwoIdps(t, {
    idp: { tokenExchange: STACK_EXCHANGE },
    routes: (shared) => [route('/ledger', shared, { token: 'exchange', exchange: LEDGER_EXCHANGE })],
    config: { logLevel: 'info' },
    gateway: { logStream: logs.stream },
  })
  const base = set.urls[0]!
  const corp = await login(base, { params: { idp: 'corp' } })
  const partner = await login(base, { params: { idp: 'partner' } })
  for (const { idp } of [set.corp, set.partner]) idp.resetStats()

  set.shared.clear()
  t.equal((await apiCall(partner.jar, `${base}/ledger/x`)).status, 200, 'the partner session')
  t.equal(set.partner.idp.stats.tokenExchanges, 1, 'exchanged at partner')
  t.equal(set.corp.idp.stats.tokenRequests, 0, 'corp saw no token request at all')
  const partnerToken = set.shared.requests[0]!.authorization!.slice(7)
  t.match(await set.partner.idp.describe(partnerToken), { aud: LEDGER, sub: 'alice' }, "partner's token")
  t.notOk(await set.corp.idp.isActive(partnerToken), 'corp does not know it')

  t.equal((await apiCall(corp.jar, `${base}/ledger/x`)).status, 200, 'the corp session')
  t.equal(set.corp.idp.stats.tokenExchanges, 1, 'exchanged at corp')
  t.equal(set.partner.idp.stats.tokenExchanges, 1, 'partner saw no second exchange')
  const corpToken = set.shared.requests[1]!.authorization!.slice(7)
  t.match(await set.corp.idp.describe(corpToken), { aud: LEDGER })
  t.not(corpToken, partnerToken, 'the same sub at two providers: two sessions, two tokens')
  // The same route and audience at two providers: only the line's idp tells whose IdP answered.
  t.same(
    logs.lines.filter((line) => line.msg === 'token exchanged').map((line) => line.idp),
    ['partner', 'corp'],
    "each exchange's log line names its provider",
  )
  const counted = await set.apps[0]!.gatehouse.metrics.registry.metrics()
  for (const idp of ['partner', 'corp'])
    t.match(
      counted,
      `gatehouse_token_exchanges_total{outcome="success",audience="${LEDGER}",idp="${idp}"} 1`,
      `the exchanges metric counts ${idp}'s apart`,
    )
})
