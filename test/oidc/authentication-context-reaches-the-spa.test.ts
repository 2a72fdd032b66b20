/**
 * `acr_values` is a request the gateway passes, not a check it makes
 * (docs/security.md): a deployment that needs an authentication context,
 * say one provider entry that asks its client for MFA beside another that
 * does not, has the SPA or the upstream check the ID token's `acr`, which
 * the browser cannot change, as it can the authorization request it
 * carries to the IdP. The session dropped `acr` and `amr` as protocol
 * claims, so `/auth/user`'s `claims`, where that check was to be made,
 * never had them, whatever the IdP asserted.
 *
 * The IdP is the mock at oauth4webapi's fetch seam: the dev IdP's
 * oidc-provider interactions assert no authentication context.
 */
import t from 'tap'
import { discoveredClient, type MockIdp, signInWithIdToken } from '../helpers/mock-idp.js'

/** The session's claims of a sign-in whose ID token also carries `claims`. */
async function claimsOf(mock: MockIdp, claims: Record<string, unknown>) {
  return (await signInWithIdToken(mock, {}, claims)).claims
}

const asserted = {
  name: 'Alice',
  acr: 'urn:example:loa:mfa',
  amr: ['pwd', 'otp'],
  auth_time: Math.floor(Date.now() / 1000) - 5,
  sid: 'an-idp-session',
}

t.test("the ID token's acr and amr are in the session's claims, for /auth/user", async (t) => {
  const mock = await discoveredClient(t, { oidc: { userinfo: false } })
  const claims = await claimsOf(mock, asserted)
  t.equal(claims.acr, asserted.acr, 'how strongly the user authenticated')
  t.same(claims.amr, asserted.amr, 'and by which methods')
  t.equal(claims.name, 'Alice')
  for (const plumbing of ['nonce', 'sid', 'iat', 'exp', 'aud', 'auth_time'])
    t.notOk(plumbing in claims, `${plumbing} stays out`)
})

t.test('session.claims still keeps exactly what it lists', async (t) => {
  const mock = await discoveredClient(t, { oidc: { userinfo: false }, config: { claims: ['name'] } })
  t.same(await claimsOf(mock, asserted), { name: 'Alice' })
  const listed = await discoveredClient(t, { oidc: { userinfo: false }, config: { claims: ['acr'] } })
  t.same(await claimsOf(listed, asserted), { acr: asserted.acr })
})
