/**
 * RP-Initiated Logout 1.0 §2 has the OP take GET and POST at its
 * end-session endpoint; Glewlwyd 2.7 answers a POST 404
 * (test/interop/glewlwyd.test.ts), and so does the dev IdP unless
 * `endSessionPost` is set. With `auth.endSession: post`, the default, the
 * user was left on the IdP's error page with its session alive, and
 * `check --online` said the end-session row was ok.
 */
import t from 'tap'
import { checkOnline, devIdpForCheck } from '../helpers/check-online.js'
import { REFUSED_URL } from '../helpers/ports.js'

const ROW = /^end-session by POST\s+auth\.endSession: post\s+(.*?)\s+(ok|warn|-)$/m
const HINT = /^hint: end_session_endpoint answers a POST with HTTP 404: .*use auth\.endSession: get/m

t.test('an end-session endpoint that refuses POST: a warning and the setting to use', async (t) => {
  const idp = await devIdpForCheck(t)
  const run = await checkOnline(idp.issuer)
  t.equal(run.code, 0, 'sign-in works all the same: not blocking', { out: run.out, err: run.err })
  t.match(run.out, ROW, 'the row is there')
  t.same(ROW.exec(run.out)?.slice(1), ['refused: HTTP 404 to a POST', 'warn'], 'it says the POST was refused')
  t.match(run.out, HINT, 'the hint says to log out by GET')
})

t.test('an end-session endpoint that takes POST: ok, no hint', async (t) => {
  const idp = await devIdpForCheck(t, { endSessionPost: true })
  const run = await checkOnline(idp.issuer)
  t.equal(run.code, 0, { out: run.out, err: run.err })
  t.same(ROW.exec(run.out)?.slice(2), ['ok'], 'the row says it is taken')
  t.notMatch(run.out, HINT, 'no hint')
})

t.test('auth.endSession: get is not probed', async (t) => {
  const idp = await devIdpForCheck(t)
  const run = await checkOnline(idp.issuer, '  clientSecret: s3cret\nauth: { endSession: get }')
  t.equal(run.code, 0, { out: run.out, err: run.err })
  t.notMatch(run.out, /end-session by POST/, 'no row')
  t.notMatch(run.out, HINT, 'no hint')
})

t.test('an end-session endpoint that does not answer: said, neither ok nor a warning', async (t) => {
  const idp = await devIdpForCheck(t, {
    quirks: { discoveryDocument: (doc) => ({ ...doc, end_session_endpoint: `${REFUSED_URL}/session/end` }) },
  })
  const run = await checkOnline(idp.issuer)
  t.equal(run.code, 0, { out: run.out, err: run.err })
  t.same(
    ROW.exec(run.out)?.slice(1),
    [`not answered: ECONNREFUSED 127.0.0.1:${REFUSED_URL.split(':').at(-1)}`, '-'],
    'the row names the cause',
  )
  t.notMatch(run.out, HINT, 'no hint')
})
