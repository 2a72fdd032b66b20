/**
 * `auth.endSession: client-id` names the client by `client_id` alone
 * (RP-Initiated Logout 1.0 §2). Glewlwyd 2.7 ends nothing without
 * `id_token_hint` and answers an empty 200 (test/interop/glewlwyd.test.ts),
 * and so does the dev IdP with `endSessionNeedsIdTokenHint`: the user was
 * left on a blank page with the IdP's session alive, and `check --online`
 * said nothing of it.
 */
import t from 'tap'
import { checkOnline, devIdpForCheck } from '../helpers/check-online.js'

const CLIENT_ID = '  clientSecret: s3cret\nauth: { endSession: client-id }'
const ROW = /^end-session by client_id\s+auth\.endSession: client-id\s+(.*?)\s+(ok|warn|-)$/m
const HINT =
  /^hint: end_session_endpoint answers a logout request without id_token_hint with an empty HTTP 200: .*use auth\.endSession: get\.$/m

t.test(
  'an end-session endpoint that ends nothing without id_token_hint: a warning and the setting to use',
  async (t) => {
    const idp = await devIdpForCheck(t, { quirks: { endSessionNeedsIdTokenHint: true } })
    const run = await checkOnline(idp.issuer, CLIENT_ID)
    t.equal(run.code, 0, 'sign-in works all the same: not blocking', { out: run.out, err: run.err })
    t.same(
      ROW.exec(run.out)?.slice(1),
      ['an empty HTTP 200 without id_token_hint', 'warn'],
      'the row says so',
    )
    t.match(run.out, HINT, 'the hint says to log out by GET')
  },
)

t.test('an end-session endpoint that answers client_id alone with a page: ok, no hint', async (t) => {
  const idp = await devIdpForCheck(t)
  const run = await checkOnline(idp.issuer, CLIENT_ID)
  t.equal(run.code, 0, { out: run.out, err: run.err })
  t.same(ROW.exec(run.out)?.slice(1), ['taken (HTTP 200)', 'ok'], 'its logout page is taken')
  t.notMatch(run.out, HINT, 'no hint')
})

t.test('auth.endSession: post and get are not probed so', async (t) => {
  const idp = await devIdpForCheck(t, { quirks: { endSessionNeedsIdTokenHint: true } })
  for (const endSession of ['post', 'get']) {
    const run = await checkOnline(idp.issuer, `  clientSecret: s3cret\nauth: { endSession: ${endSession} }`)
    t.equal(run.code, 0, { out: run.out, err: run.err })
    t.notMatch(run.out, /end-session by client_id/, `no row with ${endSession}`)
    t.notMatch(run.out, HINT, `no hint with ${endSession}`)
  }
})
