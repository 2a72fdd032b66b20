/**
 * A logout token that came while its issuer's keys could not be read is
 * held and tried again after 1 s, doubling to 8 s while they stay
 * unreadable. The delay was one for every issuer: corp's JWKS down for a
 * few tries doubled it, and a token of partner's, whose JWKS had failed
 * one fetch and answered again, waited for corp's next try, its user's
 * sessions running meanwhile. Each issuer's held tokens now keep a
 * backoff of their own, and partner's is carried out after its own first
 * second, before corp is asked again.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { jwksDownCounted } from '../helpers/logout.js'
import { startTwoIdpsPostingLogouts } from '../helpers/two-idps.js'

t.test("partner's held logout is carried out after its own first delay, not corp's", async (t) => {
  const set = await startTwoIdpsPostingLogouts(t)
  const { base, post } = set
  const alice = await login(base, { user: 'alice', params: { idp: 'partner' } })
  const carol = await login(base, { user: 'carol', params: { idp: 'corp' } })

  const corpJwks = jwksDownCounted(set.corp.idp)
  t.equal((await post(await set.corp.logoutToken({ sub: 'carol' }))).status, 503, "corp's token is held")
  // The delivery's own fetch, then tries 1 s and 2 s apart: corp's next waits 4 s.
  await corpJwks.fetched(3)

  // Partner's JWKS fails this one fetch: an outage as brief as any, which holds its token.
  t.equal((await set.postWhileJwksFailsOnce(set.partner, 'alice')).status, 503, "partner's token is held")

  await set.carriedOut('partner')
  t.equal(corpJwks.count, 3, "before corp's next try: partner's waited its own 1 s, not corp's 4 s")
  t.equal((await apiCall(alice.jar, `${base}/api/partner`)).status, 401, "alice's session ended")
  t.equal(
    (await apiCall(carol.jar, `${base}/api/corp`)).status,
    200,
    "carol's runs on while corp's keys are out",
  )

  // Corp's keys can be read again: its own backoff brings its token at its next try.
  set.corp.idp.answer('jwks')
  await set.carriedOut('corp')
  t.equal((await apiCall(carol.jar, `${base}/api/corp`)).status, 401, "carol's session ended")
})
