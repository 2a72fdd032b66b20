/**
 * A token endpoint that answers a dead refresh token with a 401 and an
 * RFC 6750 challenge, `Bearer error="invalid_token"`: the only token the
 * request carried is the grant's, so the challenge speaks of it, not of
 * the gateway's credentials (a wrong secret is `invalid_client`, §5.2).
 * It was read as the client refused: the user's session stayed on 500
 * `idp_client_refused` at every request, and every other session's
 * refresh at that provider was held back for 5 minutes, for one dead
 * refresh token. test/oidc/bare-challenge-beside-an-oauth-error.test.ts
 * runs the stack through it; here, how it is read, and the credential probe.
 */

import t from 'tap'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { discoveredClient, JSON_HEADERS, tokenAnswer } from '../helpers/mock-idp.js'

t.test(
  'read as an OAuth error about the grant, by operation; the credential probe calls it neither',
  async (t) => {
    const { idp, oidc } = await discoveredClient(t)
    const challenge = { ...JSON_HEADERS, 'www-authenticate': 'Bearer error="invalid_token"' }
    void tokenAnswer(idp, 401, {}, challenge)
    const err = await oidc
      .refresh({ accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' })
      .catch((e: unknown) => e)
    t.match(idpFailureOf(err), {
      answer: 'other_oauth_error',
      verdict: 'session_over',
      status: 401,
      reason: /invalid_token/,
    })

    // An IdP that looks at the grant first would answer a wrong secret so too:
    // no proof that the client was authenticated, so the probe says neither.
    void tokenAnswer(idp, 401, {}, challenge)
    const probe = await oidc.probeCredentials()
    t.not(probe.verdict, 'accepted', 'not taken as the credentials accepted')
    t.not(probe.verdict, 'refused', 'nor as refused')
  },
)
