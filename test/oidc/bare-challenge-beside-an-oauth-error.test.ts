/**
 * RFC 9110 §15.5.2: a 401 carries a `WWW-Authenticate` challenge, so an IdP
 * that answers a dead refresh token with `401 {"error":"invalid_grant"}`
 * sends one too, often a bare `Basic realm="…"` that names no error. The
 * challenge was read before the body (oauth4webapi raises it first) and a
 * 401 challenge that names nothing is the client refused: the user's
 * session was kept on 500 `idp_client_refused`, and every other session's
 * refresh at that provider held back for 5 minutes, for one dead refresh
 * token. The OAuth error in the body now decides, as docs/troubleshooting.md
 * orders it; a challenge that names an error, or of the DPoP scheme, still
 * does.
 */

import t from 'tap'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { apiCall, login } from '../helpers/login.js'
import { discoveredClient, JSON_HEADERS, tokenAnswer } from '../helpers/mock-idp.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const DEAD_GRANT_ANSWERS = [
  {
    name: '401 invalid_grant with a bare Basic challenge',
    headers: { 'www-authenticate': 'Basic realm="idp"' },
    body: { error: 'invalid_grant', error_description: 'refresh token expired' } as
      | Readonly<Record<string, unknown>>
      | string,
  },
  // RFC 6750 §3.1: `invalid_token` speaks of a token the request carried, at
  // the token endpoint the grant's; it was read as the client refused too.
  {
    name: '401 with a Bearer challenge naming invalid_token, and no body',
    headers: { 'www-authenticate': 'Bearer realm="idp", error="invalid_token", error_description="expired"' },
    body: '',
  },
]

for (const { name, headers, body } of DEAD_GRANT_ANSWERS)
  t.test(`${name}: that user's session ends, the others' refreshes go on`, async (t) => {
    const stack = await startObservedStack(t)
    const base = stack.gateway.url
    const one = await login(base)
    const other = await login(base)
    stack.idp.answer('token', { grantType: 'refresh_token', status: 401, headers, body })
    stack.clock.advance(61_000)

    const ended = await apiCall(one.jar, `${base}/api/orders`)
    t.equal(ended.status, 401, 'the grant is gone: the SPA sends the user to sign in')
    t.equal(ended.json().error, 'session_expired')
    t.equal((await apiCall(one.jar, `${base}/auth/user`)).status, 401)
    t.notOk(
      stack.lines.some((l) => l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED'),
      "not logged as the gateway's credentials refused",
    )

    stack.idp.answer('token')
    const served = await apiCall(other.jar, `${base}/api/orders`)
    t.equal(served.status, 200, "another user's refresh is not held back")
    t.equal(stack.idp.stats.refreshGrants, 1, 'and the IdP was asked for it')
  })

t.test('which decides: the body, unless the challenge names an error or is DPoP', async (t) => {
  const cases: [string, Record<string, string>, string, string][] = [
    ['Basic realm="idp"', { error: 'invalid_grant' }, 'invalid_grant', 'session_over'],
    ['Bearer realm="idp"', { error: 'invalid_grant' }, 'invalid_grant', 'session_over'],
    ['Basic realm="idp"', { error: 'invalid_client' }, 'invalid_client', 'client_refused'],
    // oidc-provider's own answer to a wrong secret: the challenge names it.
    [
      'Basic realm="idp", error="invalid_client"',
      { error: 'invalid_client' },
      'invalid_client',
      'client_refused',
    ],
    ['Bearer error="invalid_token"', { error: 'invalid_grant' }, 'other_oauth_error', 'session_over'],
    ['Bearer error="invalid_request"', { error: 'invalid_grant' }, 'unauthorized', 'client_refused'],
    ['DPoP algs="ES256"', { error: 'invalid_grant' }, 'invalid_dpop_proof', 'unavailable'],
  ]
  for (const [challenge, body, answer, verdict] of cases) {
    const { idp, oidc } = await discoveredClient(t)
    void tokenAnswer(idp, 401, body, { ...JSON_HEADERS, 'www-authenticate': challenge })
    const err = await oidc
      .refresh({ accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' })
      .catch((e: unknown) => e)
    t.match(idpFailureOf(err), { answer, verdict, status: 401 }, `${challenge} beside ${body.error}`)
  }
})
