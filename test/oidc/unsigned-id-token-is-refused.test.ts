/**
 * OIDC Core §2 allows an unsigned ID token (`alg: none`) only to a client
 * registered for it. oauth4webapi, given no algorithms, checks the ID
 * token's `alg` against the IdP's advertised list, so an IdP that listed
 * `none` (LemonLDAP::NG, configured to send a relying party unsigned
 * tokens) had unsigned ID tokens taken without a word. They are refused,
 * and the page says why; an IdP that only lists `none` among others and
 * signs is unaffected.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

t.test('an unsigned ID token from an IdP that lists none: the sign-in is refused and says why', async (t) => {
  const stack = await startObservedStack(t, { idp: { quirks: { unsignedIdTokens: true } } })
  const { callback, jar } = await login(stack.gateway.url)
  t.equal(callback.status, 400)
  t.match(callback.text, /the ID token is unsigned \(alg (&quot;|")none(&quot;|")\)/)
  t.match(callback.text, /have the identity provider sign ID tokens \(RS256/)
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 401, 'no session')
})

t.test('an IdP that lists none and signs its ID tokens: the sign-in works', async (t) => {
  const stack = await startObservedStack(t, {
    idp: {
      quirks: {
        discoveryDocument: (doc) => ({
          ...doc,
          id_token_signing_alg_values_supported: ['none', 'RS256'],
        }),
      },
    },
  })
  const { callback, jar } = await login(stack.gateway.url)
  t.equal(callback.status, 302)
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 200, 'signed in')
})
