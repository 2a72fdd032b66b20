/**
 * An outage's warning is written once a minute per code and cause, the
 * next saying how many requests it answered so. With several identity
 * providers, the line of a sign-in (or of a `token: client` route's
 * token) that met one's outage named no provider, and its once-a-minute
 * key was the same for every provider: partner's token endpoint failing
 * was a line that did not say partner, and corp failing in the same
 * minute was counted as one more of partner's, never logged as corp's.
 */
import t from 'tap'
import { login } from '../helpers/login.js'
import { LogLines } from '../helpers/reloadable.js'
import { startTwoIdps } from '../helpers/two-idps.js'

t.test("each provider's outage at sign-in is a warning of its own, naming it", async (t) => {
  const log = new LogLines()
  const set = await startTwoIdps(t, { config: { logLevel: 'info' }, gateway: { logStream: log.stream } })
  const base = set.urls[0]!
  const outages = () =>
    log.lines.filter((line) => line.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && line.level === 40)

  set.partner.idp.answer('token', { grantType: 'authorization_code', status: 503, body: {} })
  const atPartner = await login(base, { params: { idp: 'partner' } })
  t.equal(atPartner.callback.status, 503, "a sign-in at partner meets partner's outage")
  t.match(
    outages(),
    [{ operation: 'code_exchange', idp: 'partner', reason: 'HTTP 503' }],
    'the warning names partner',
  )

  set.corp.idp.answer('token', { grantType: 'authorization_code', status: 503, body: {} })
  const atCorp = await login(base, { params: { idp: 'corp' } })
  t.equal(atCorp.callback.status, 503, "one at corp meets corp's, in the same minute")
  t.match(
    outages(),
    [
      { idp: 'partner', reason: 'HTTP 503' },
      { idp: 'corp', reason: 'HTTP 503' },
    ],
    "corp's outage is a warning of its own, not one more of partner's",
  )
  t.equal(outages().length, 2)

  set.corp.idp.answer('token', { grantType: 'authorization_code', status: 503, body: {} })
  await login(base, { params: { idp: 'corp' } })
  t.equal(outages().length, 2, "corp's next failure in the minute is counted, not written")
})
