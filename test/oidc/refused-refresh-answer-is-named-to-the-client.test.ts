/**
 * A 200 the gateway refuses (a negative `expires_in`, an unsupported
 * `token_type`, an ID token whose `iss` or `aud` is wrong) is the IdP's
 * deviation, not an outage: the log line's `reason` named it, but the API
 * answered the catalogue's "the identity provider is unavailable", which
 * sends whoever reads it to check the IdP's uptime. The 503 (the IdP may
 * answer right next time, and the session stays) now says the answer
 * failed validation, and how, as the sign-in page does for a login.
 */

import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'
import { startObservedStack } from '../helpers/observed-stack.js'

t.test('a refresh answered with a negative expires_in: the 503 says what was wrong', async (t) => {
  const stack = await startObservedStack(t, { idp: { quirks: { negativeExpiresInOnRefresh: true } } })
  const { jar } = await login(stack.gateway.url)
  stack.clock.advance(61_000)
  const answer = await apiCall(jar, `${stack.gateway.url}/api/orders`)
  t.equal(answer.status, 503)
  t.equal(answer.json().error, 'token_refresh_unavailable')
  t.equal(
    answer.json().message,
    'The identity provider\'s answer failed validation ("response" body "expires_in" property must be a non-negative number), so none of it was used. Retry later.',
  )
  t.notMatch(answer.json().message, /is unavailable/)
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 200, 'the session stays')
})

t.test('a client-credentials answer of a token type never asked for: named too', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, { access_token: 'a', token_type: 'mac', expires_in: 60 })
  await t.rejects(oidc.clientCredentials([]), {
    code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE',
    message:
      'The identity provider\'s answer failed validation (the identity provider issued a token of token_type "mac", which is neither Bearer nor DPoP (RFC 6749 §7.1), so no Authorization header the gateway sends would carry it), so none of it was used. Retry later.',
  })
})

t.test('an answer that is no JSON at all is still an IdP unavailable', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, '<html>maintenance</html>', { 'content-type': 'text/html' })
  await t.rejects(oidc.clientCredentials([]), {
    code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE',
    message: /could not be obtained from the identity provider/,
  })
})
