/**
 * RFC 9449 §8: `use_dpop_nonce` asks for a proof carrying the IdP's nonce.
 * The gateway retries once when its request carried a proof; a request
 * that carried none has no proof to put the nonce in, and sending it again
 * unchanged only doubles what an IdP that answers so (a misconfigured
 * client, a proxy in front of it) receives.
 */

import t from 'tap'
import { signedInWithDpop } from '../helpers/dpop.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const NONCE_ANSWER = {
  grantType: 'refresh_token',
  status: 400,
  headers: { 'dpop-nonce': 'nonce-of-the-test-0123456789' },
  body: { error: 'use_dpop_nonce', error_description: 'nonce is required in the DPoP proof' },
} as const

for (const dpop of [false, true]) {
  t.test(`use_dpop_nonce at a refresh ${dpop ? 'with' : 'without'} a proof`, async (t) => {
    const stack = await startObservedStack(t, {
      accessTokenTtl: 60,
      ...(dpop ? { config: { oidc: { dpop: true } }, client: { dpopBoundAccessTokens: true } } : {}),
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    stack.idp.answer('token', NONCE_ANSWER)
    stack.clock.advance(61_000)
    const before = stack.idp.stats.tokenRequests
    const api = await apiCall(jar, `${base}/api/orders`)
    t.not(api.status, 200, 'the refresh failed')
    t.equal(
      stack.idp.stats.tokenRequests - before,
      dpop ? 2 : 1,
      dpop ? 'retried once with the nonce' : 'not sent again: there was no proof to put a nonce in',
    )
  })
}

t.test('use_dpop_nonce whose nonce no proof may carry is not retried', async (t) => {
  const { stack, base, jar } = await signedInWithDpop(t)
  // RFC 9449 §8.1: NQCHAR, no space; two fields joined by a proxy read so.
  stack.idp.answer('token', { ...NONCE_ANSWER, headers: { 'dpop-nonce': 'n-1, n-2' } })
  stack.clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  const api = await apiCall(jar, `${base}/api/orders`)
  t.equal(api.status, 503, 'the refused proof is a 503')
  t.match(api.text, /no nonce a proof may carry/, 'that says why')
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'not sent again: the retry would carry no nonce')
})
