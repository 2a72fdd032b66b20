/**
 * Each issuer's held logout tokens keep a backoff of their own, but the
 * issuers were still tried in turn within a pass: corp's JWKS holding its
 * fetch open until the IdP's `timeout` held partner's tokens back that
 * long, each pass, their users' sessions running meanwhile. The issuers
 * are now tried alongside one another, as the owed revocations' lanes are.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startTwoIdpsPostingLogouts } from '../helpers/two-idps.js'

t.test("partner's held logout is carried out while corp's JWKS fetch hangs", async (t) => {
  // Long enough that partner's token, waiting for corp's fetch to time out, is seen to wait.
  const set = await startTwoIdpsPostingLogouts(t, { idpTimeout: 60_000 })
  const { base, post } = set
  const alice = await login(base, { user: 'alice', params: { idp: 'partner' } })
  const carol = await login(base, { user: 'carol', params: { idp: 'corp' } })

  // Corp's JWKS fails the delivery's fetch, which holds its token.
  set.corp.idp.answer('jwks', { status: 503, body: 'unavailable', headers: { 'retry-after': '1' } })
  t.equal((await post(await set.corp.logoutToken({ sub: 'carol' }))).status, 503, "corp's token is held")

  // Then it holds every fetch open until let go: the gateway waits its 60 s timeout.
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  t.teardown(() => release())
  let hanging = () => {}
  const corpHangs = new Promise<void>((resolve) => {
    hanging = resolve
  })
  let corpAnswered = false
  set.corp.idp.answer('jwks', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: () => {
      hanging()
      return 'unavailable'
    },
    held: async () => {
      await released
      corpAnswered = true
    },
  })
  await corpHangs

  // Partner's JWKS fails this one fetch while corp's try hangs: its token is held too.
  t.equal((await set.postWhileJwksFailsOnce(set.partner, 'alice')).status, 503, "partner's token is held")

  await set.carriedOut('partner')
  t.notOk(corpAnswered, "while corp's fetch still hangs: partner's try did not wait for it")
  t.equal((await apiCall(alice.jar, `${base}/api/partner`)).status, 401, "alice's session ended")
  t.equal(
    (await apiCall(carol.jar, `${base}/api/corp`)).status,
    200,
    "carol's runs on while corp's keys are out",
  )

  // Corp answers again: its own backoff brings its token at its next try.
  set.corp.idp.answer('jwks')
  release()
  await set.carriedOut('corp')
  t.equal((await apiCall(carol.jar, `${base}/api/corp`)).status, 401, "carol's session ended")
})
