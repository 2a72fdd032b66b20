import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { PARTNER_REPORTS, startTwoIdps, type TwoIdps } from '../helpers/two-idps.js'

/** The session behind a jar's cookie, read from the gateway's store. */
async function sessionOf(set: TwoIdps, jar: CookieJar) {
  const app = set.apps[0]!
  const ref = sessionRefOf(app, jar.get(set.urls[0]!, 'gatehouse')!)
  return app.gatehouse.stores.sessions.get(ref, Date.now(), { touch: false })
}

const form = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('?idp= chooses the provider; without it the first; /auth/user says which', async (t) => {
  const set = await startTwoIdps(t)
  const base = set.urls[0]!
  const viaPartner = await login(base, { params: { idp: 'partner' } })
  const viaDefault = await login(base)
  const partnerUser = (await apiCall(viaPartner.jar, `${base}/auth/user`)).json()
  const defaultUser = (await apiCall(viaDefault.jar, `${base}/auth/user`)).json()
  t.equal(partnerUser.idp, 'partner')
  t.equal(defaultUser.idp, 'corp', 'no idp: the first provider')
  t.equal(set.partner.idp.stats.authorizationCodeGrants, 1, 'the partner login redeemed its code at partner')
  t.equal(set.corp.idp.stats.authorizationCodeGrants, 1, 'the default login at corp')
  t.ok(viaPartner.responses[0]!.location!.startsWith(set.partner.idp.issuer), 'the browser went to partner')
})

t.test('an unknown ?idp= is a 400 sign-in page and goes to no IdP', async (t) => {
  const set = await startTwoIdps(t)
  const base = set.urls[0]!
  for (const query of ['idp=nobody', 'idp=', 'idp=corp&idp=partner']) {
    const answer = await jarFetch(new CookieJar(), `${base}/auth/login?returnTo=/&${query}`)
    t.equal(answer.status, 400, query)
    t.equal(answer.location, undefined, `${query}: no redirect to any IdP`)
    t.match(answer.headers.get('content-type'), /^text\/html/, 'the sign-in error page')
    t.match(answer.text, /identity provider this gateway does not have/)
  }
  t.equal(set.corp.idp.stats.tokenRequests + set.partner.idp.stats.tokenRequests, 0)
})

t.test('routes[].identityProviders: 403 wrong_identity_provider before any token is used', async (t) => {
  const set = await startTwoIdps(t)
  const base = set.urls[0]!
  const corp = await login(base, { params: { idp: 'corp' } })
  const partner = await login(base, { params: { idp: 'partner' } })

  t.equal((await apiCall(corp.jar, `${base}/api/corp`)).status, 200)
  t.equal((await apiCall(partner.jar, `${base}/api/partner`)).status, 200)
  t.equal((await apiCall(corp.jar, `${base}/api/any`)).status, 200, 'an unrestricted route serves both')
  t.equal((await apiCall(partner.jar, `${base}/api/any`)).status, 200)
  set.corp.api.clear()
  set.partner.api.clear()
  const refusedCorp = await apiCall(partner.jar, `${base}/api/corp`)
  const refusedPartner = await apiCall(corp.jar, `${base}/api/partner`)
  for (const refused of [refusedCorp, refusedPartner]) {
    t.equal(refused.status, 403)
    t.equal(refused.json().error, 'wrong_identity_provider')
  }
  t.equal(set.corp.api.requests.length + set.partner.api.requests.length, 0, 'no upstream saw either call')
})

t.test('each session refreshes, revokes and ends its IdP session at its own provider', async (t) => {
  let skew = 0
  const set = await startTwoIdps(t, { gateway: { now: () => Date.now() + skew } })
  const base = set.urls[0]!
  const corp = await login(base, { params: { idp: 'corp' } })
  const partner = await login(base, { params: { idp: 'partner' } })
  set.corp.idp.resetStats()
  set.partner.idp.resetStats()

  // Past the access tokens' lifetime: the next call of each session refreshes.
  skew = 120_000
  t.equal((await apiCall(partner.jar, `${base}/api/partner`)).status, 200)
  t.equal(set.partner.idp.stats.refreshGrants, 1, "partner's session refreshed at partner")
  t.equal(set.corp.idp.stats.tokenRequests, 0, 'and nothing reached corp')
  t.equal((await apiCall(corp.jar, `${base}/api/corp`)).status, 200)
  t.equal(set.corp.idp.stats.refreshGrants, 1, "corp's at corp")
  t.equal(set.partner.idp.stats.refreshGrants, 1)
  const metrics = await set.apps[0]!.gatehouse.metrics.registry.metrics()
  t.match(metrics, 'gatehouse_token_refreshes_total{outcome="success",resource="",idp="partner"} 1')
  t.match(metrics, 'gatehouse_token_refreshes_total{outcome="success",resource="",idp="corp"} 1')
  t.match(metrics, 'gatehouse_logins_total{refresh_token="issued",idp="partner"} 1', 'logins by provider')
  const token = set.partner.api.requests.at(-1)!.authorization!.slice('Bearer '.length)
  t.ok(await set.partner.idp.isActive(token), "partner's upstream got a token partner issued")
  t.notOk(await set.corp.idp.isActive(token), 'that corp never issued')

  const { logoutUrl } = (await apiCall(partner.jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  const out = await jarFetch(partner.jar, `${base}${logoutUrl}`)
  t.equal(out.status, 200, 'the end-session page')
  t.match(out.text, new RegExp(`action="${set.partner.idp.issuer}`), "to partner's end_session_endpoint")
  t.notMatch(out.text, new RegExp(set.corp.idp.issuer))
  t.equal(set.partner.idp.stats.revocations, 1, 'the refresh token was revoked at partner')
  t.equal(set.corp.idp.stats.revocations, 0)
  t.equal((await apiCall(corp.jar, `${base}/api/corp`)).status, 200, "corp's session stays")
})

t.test("a route's resource is asked of its own provider, and its token comes from there", async (t) => {
  const set = await startTwoIdps(t)
  const base = set.urls[0]!
  const corp = await login(base, { params: { idp: 'corp' } })
  const partner = await login(base, { params: { idp: 'partner' } })
  const resources = (answer: { location?: string | undefined }) =>
    new URL(answer.location!).searchParams.getAll('resource')
  t.same(resources(partner.responses[0]!), [PARTNER_REPORTS], "partner's login asks for its route's resource")
  t.same(resources(corp.responses[0]!), [], "corp's never names another provider's resource server")
  set.corp.idp.resetStats()
  set.partner.idp.resetStats()

  t.equal((await apiCall(partner.jar, `${base}/api/partner-reports`)).status, 200)
  t.equal(
    set.partner.idp.stats.refreshGrants,
    1,
    "the route's token, from partner's refresh token, at partner",
  )
  t.equal(set.corp.idp.stats.tokenRequests, 0)
  const token = set.partnerReports.requests[0]!.authorization!.slice('Bearer '.length)
  const seen = await set.partner.idp.introspect(token)
  t.equal(seen.aud, PARTNER_REPORTS, 'issued for the resource')
  t.equal(seen.scope, 'reports.read')
  const refused = await apiCall(corp.jar, `${base}/api/partner-reports`)
  t.equal(refused.json().error, 'wrong_identity_provider', 'a corp session never asks for it')
})

t.test('a logout token from one provider never ends a session of another, sub and sid alike', async (t) => {
  // Registered for back-channel logout, so the ID tokens carry a sid.
  const set = await startTwoIdps(t, { backchannel: 'shared' })
  const base = set.urls[0]!
  const post = (path: string, token: string) =>
    jarFetch(new CookieJar(), `${base}${path}`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: form,
    })
  // The same user name at both IdPs: the same `sub`.
  const atCorp = await login(base, { params: { idp: 'corp' } })
  const atPartner = await login(base, { params: { idp: 'partner' } })
  const corpSession = (await sessionOf(set, atCorp.jar))!
  const partnerSession = (await sessionOf(set, atPartner.jar))!
  t.equal(corpSession.sub, partnerSession.sub, 'the subs collide')
  t.ok(partnerSession.sid, 'the partner session has a sid')

  // corp names partner's sid and the shared sub: it signs for corp only.
  const bySid = await post(
    '/auth/backchannel-logout',
    await set.corp.logoutToken({ sid: partnerSession.sid! }),
  )
  t.equal(bySid.status, 200)
  t.equal(bySid.json().ended, 0, "corp's token finds no corp session with partner's sid")
  t.equal((await apiCall(atPartner.jar, `${base}/api/partner`)).status, 200, 'partner session stays')
  const ownPath = await post(
    '/auth/backchannel-logout/partner',
    await set.corp.logoutToken({ sub: partnerSession.sub }),
  )
  t.equal(ownPath.status, 400, "partner's own path verifies against partner only: corp's signature fails")
  t.equal((await apiCall(atPartner.jar, `${base}/api/partner`)).status, 200)

  const bySub = await post(
    '/auth/backchannel-logout',
    await set.partner.logoutToken({ sub: partnerSession.sub }),
  )
  t.equal(bySub.json().ended, 1, "partner's token by sub ends partner's session only")
  t.equal((await apiCall(atPartner.jar, `${base}/api/partner`)).status, 401)
  t.equal((await apiCall(atCorp.jar, `${base}/api/corp`)).status, 200, "corp's session of the same sub stays")

  const corpOwn = await post(
    '/auth/backchannel-logout/corp',
    await set.corp.logoutToken({ sid: corpSession.sid! }),
  )
  t.equal(corpOwn.json().ended, 1, "corp's own path ends corp's session")
  t.equal((await apiCall(atCorp.jar, `${base}/api/corp`)).status, 401)
})

t.test("the IdP's own logout reaches the gateway at the provider's path", async (t) => {
  const set = await startTwoIdps(t, { backchannel: 'own' })
  const base = set.urls[0]!
  const atCorp = await login(base, { params: { idp: 'corp' } })
  const atPartner = await login(base, { params: { idp: 'partner' } })
  const ended = await set.partner.idp.endSession('alice')
  t.equal(ended.delivered, 1, 'partner delivered its logout token')
  t.equal((await apiCall(atPartner.jar, `${base}/api/partner`)).status, 401)
  t.equal((await apiCall(atCorp.jar, `${base}/api/corp`)).status, 200, 'alice at corp is another session')
})

t.test("one provider's outage costs only its own sessions", async (t) => {
  let skew = 0
  const set = await startTwoIdps(t, { gateway: { now: () => Date.now() + skew } })
  const base = set.urls[0]!
  const corp = await login(base, { params: { idp: 'corp' } })
  const partner = await login(base, { params: { idp: 'partner' } })
  set.partner.idp.setDown('503')
  skew = 120_000
  const down = await apiCall(partner.jar, `${base}/api/partner`)
  t.equal(down.status, 503, "partner's session cannot refresh")
  t.equal(down.json().error, 'token_refresh_unavailable')
  t.equal((await apiCall(corp.jar, `${base}/api/corp`)).status, 200, "corp's refreshes at corp")
  t.equal((await apiCall(corp.jar, `${base}/api/any`)).status, 200)
  const fresh = await login(base, { params: { idp: 'corp' } })
  t.equal((await apiCall(fresh.jar, `${base}/auth/user`)).json().idp, 'corp', 'corp logins go on')
  set.partner.idp.setDown('ok')
  // Once the Retry-After the session was given is over: the gateway waits it out too.
  skew += Number(down.headers.get('retry-after')) * 1_000
  t.equal((await apiCall(partner.jar, `${base}/api/partner`)).status, 200, 'partner back, its session too')
})
