/**
 * A client route whose token the IdP refuses for good (`invalid_scope`:
 * the client may not have the route's scopes) asked the IdP once per
 * request, and one the IdP issued with no life left (`expires_in` 0, or
 * 0.3: under the second the gateway counts short) was forwarded dead, at
 * one IdP call per request too: a client could make the gateway hammer
 * the IdP. Now a refusal is answered again for REFUSAL_MEMORY (30 s)
 * without asking, the same 403 `client_token_refused`, and a dead token
 * is waited out as an outage: 503 `client_token_unavailable` with its
 * Retry-After, one call per back-off, as a session's dead token is. Both
 * answers from the dev IdP's edge: oidc-provider grants a client the
 * scopes it may have and drops the rest, and issues no dead token; on a
 * hand-moved clock.
 */
import t from 'tap'
import { retryAfterOf } from '../../src/errors.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { defaultRoutes } from '../helpers/stack.js'

/** src/tokens/refusal-memory.ts's REFUSAL_MEMORY, ms. */
const MEMORY = 30_000

t.test('a refused client-credentials token is asked for once per 30 s', async (t) => {
  const stack = await startObservedStack(t, {
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/secret', upstream, { token: 'client', scopes: ['not.allowed'] }),
    ],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const refuse = () =>
    stack.idp.answer('token', {
      status: 400,
      body: { error: 'invalid_scope' },
      grantType: 'client_credentials',
    })
  refuse()
  const before = stack.idp.stats.tokenRequests
  const storm = await Promise.all(Array.from({ length: 200 }, () => apiCall(jar, `${base}/api/secret`)))
  t.same(
    [...new Set(storm.map((r) => `${r.status} ${r.json().error}`))],
    ['403 client_token_refused'],
    'refused alike',
  )
  for (let i = 0; i < 3; i++) {
    stack.clock.advance(5_000)
    t.equal((await apiCall(jar, `${base}/api/secret`)).status, 403)
  }
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'the IdP was asked once')
  stack.idp.answer('token')
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, "another client route's token is fetched")
  t.equal(stack.idp.stats.tokenRequests - before, 2)
  refuse()

  stack.clock.advance(MEMORY)
  t.equal((await apiCall(jar, `${base}/api/secret`)).status, 403, 'once it is over, asked again')
  t.equal(stack.idp.stats.tokenRequests - before, 3)
})

for (const expiresIn of [0, 0.3]) {
  t.test(
    `a client-credentials token issued with expires_in ${expiresIn} is asked for once per Retry-After`,
    async (t) => {
      const stack = await startObservedStack(t)
      const base = stack.gateway.url
      const { jar } = await login(base)
      stack.idp.answer('token', {
        status: 200,
        body: { access_token: 'dead', token_type: 'Bearer', expires_in: expiresIn },
        grantType: 'client_credentials',
      })
      const before = stack.idp.stats.tokenRequests
      const storm = await Promise.all(Array.from({ length: 200 }, () => apiCall(jar, `${base}/api/reports`)))
      t.same(
        [...new Set(storm.map((r) => `${r.status} ${r.json().error}`))],
        ['503 client_token_unavailable'],
        'no dead token forwarded',
      )
      for (let i = 0; i < 3; i++) {
        const again = await apiCall(jar, `${base}/api/reports`)
        t.equal(again.status, 503)
        t.ok(Number(again.headers.get('retry-after')) >= 1, 'with a Retry-After')
      }
      t.equal(stack.idp.stats.tokenRequests - before, 1, 'the IdP was asked once')

      stack.clock.advance(retryAfterOf('GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE')! * 1_000)
      stack.idp.answer('token')
      t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'past the Retry-After, asked again')
      t.equal(stack.idp.stats.tokenRequests - before, 2)
    },
  )
}
