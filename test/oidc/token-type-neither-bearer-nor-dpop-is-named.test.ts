/**
 * A token answer whose `token_type` is neither `Bearer` nor `DPoP` (RFC
 * 6749 §7.1): `N_A`, which RFC 8693 §2.2.1 gives a token exchange's
 * non-access tokens and an IdP may send at a refresh, `mac` from an old
 * draft, a typo. Refused as it must be (no Authorization scheme the
 * gateway sends carries it), but the log line, and the 503 that quotes it,
 * said only "unsupported `token_type` value", which left the operator to
 * capture the IdP's traffic to learn what it sent. The type is now named,
 * when it is a type name: it is the IdP's to fill.
 */
import t from 'tap'
import { rotatedRefreshToken } from '../../src/oidc/rotated.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'

const current = { accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' }

t.test('a refresh answered token_type N_A: the reason names it, the rotated token is kept', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, { access_token: 'x', token_type: 'N_A', expires_in: 60, refresh_token: 'r2' })
  const err = await oidc.refresh(current).catch((e: unknown) => e)
  t.match(err, { code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' })
  const reason =
    'the identity provider issued a token of token_type "n_a", which is neither Bearer nor DPoP (RFC 6749 §7.1), so no Authorization header the gateway sends would carry it'
  t.match(idpFailureOf(err), { answer: 'invalid_answer', verdict: 'unavailable', reason })
  t.equal(
    (err as Error).message,
    `The identity provider's answer failed validation (${reason}), so none of it was used. Retry later.`,
  )
  t.same(rotatedRefreshToken(err), { refreshToken: 'r2' }, 'the refresh token it rotated is kept')
})

t.test('a client-credentials answer of token_type mac: named too', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, { access_token: 'a', token_type: 'mac', expires_in: 60 })
  const err = await oidc.clientCredentials([]).catch((e: unknown) => e)
  t.match(err, { code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE' })
  t.match(idpFailureOf(err), {
    answer: 'invalid_answer',
    reason: /token_type "mac", which is neither Bearer/,
  })
})

t.test('a token_type that is no type name (a line break, 500 characters) is not repeated', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, { access_token: 'a', token_type: `x\n${'y'.repeat(500)}`, expires_in: 60 })
  const err = await oidc.clientCredentials([]).catch((e: unknown) => e)
  const reason = idpFailureOf(err)?.reason ?? ''
  t.match(reason, /^the identity provider issued a token of a token_type, which is neither Bearer/)
  t.notMatch(reason, /\n|yyy/)
})
