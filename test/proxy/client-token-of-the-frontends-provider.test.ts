import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

/**
 * A `token: client` route gets the gateway's own token from a provider:
 * the first the route lists, else the first its frontend signs in with, as
 * the frontend's /login without `?idp=` does. It came from the first
 * provider of all, so a partners frontend that signs in with partner alone
 * sent its upstream a token of corp, a provider it has nothing to do with.
 */
t.test("a client route gets the gateway's token from its frontend's provider", async (t) => {
  const s = await startTwoFrontends(t, (upstream) => ({
    staff: { identityProviders: ['corp'], routes: [route('/reports', upstream, { token: 'client' })] },
    partners: {
      identityProviders: ['partner'],
      routes: [
        route('/reports', upstream, { token: 'client' }),
        // With a list of its own, the route's first.
        route('/shared', upstream, { token: 'client', identityProviders: ['partner'] }),
      ],
    },
  }))
  const seen = async (idp: 'corp' | 'partner') => {
    const token = s.upstream.requests.at(-1)?.authorization?.replace(/^Bearer /, '')
    return token !== undefined && (await s[idp].introspect(token)).active === true
  }

  const partners = await login(s.partners)
  t.equal((await apiCall(partners.jar, `${s.partners}/reports/x`)).status, 200)
  t.ok(await seen('partner'), "the partners upstream gets partner's token")
  t.equal(s.corp.stats.clientCredentialsGrants, 0, 'and corp is never asked')
  t.equal(s.partner.stats.clientCredentialsGrants, 1)
  t.equal((await apiCall(partners.jar, `${s.partners}/shared/x`)).status, 200)
  t.ok(await seen('partner'), "the route's own first is partner too")

  const staff = await login(s.staff)
  t.equal((await apiCall(staff.jar, `${s.staff}/reports/x`)).status, 200)
  t.ok(await seen('corp'), "the staff upstream gets corp's")
  t.equal(s.corp.stats.clientCredentialsGrants, 1)
  t.equal(s.partner.stats.clientCredentialsGrants, 1, 'each provider minted its own once')
})
