import t from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { apiCall } from '../helpers/login.js'
import { pollUntil } from '../helpers/within.js'

/*
 * A request refused for its token (401 invalid_token) waits while the
 * token is replaced, then is sent again. A browser that left meanwhile
 * still had its request replayed: a POST went to the upstream a second time
 * with nobody to take the answer.
 */

t.test('a refused request is not replayed once its browser has gone', async (t) => {
  const stack = await startAudienceStack({ rejectInactive: true })
  t.teardown(() => stack.close())
  const { idp, jar } = stack
  const orders = stack.upstreams.orders
  const url = stack.urls[0]!
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200)
  const token = orders.requests.at(-1)!.authorization!.slice('Bearer '.length)
  await (await idp.provider.AccessToken.find(token))!.destroy()
  orders.clear()
  idp.resetStats()
  // The browser leaves once the refresh the refusal causes has reached the
  // IdP, which holds it a second. A timer 300 ms after the request raced the
  // gateway: on a loaded machine the refusal, or the refresh, could come
  // after the browser had gone.
  const gone = new AbortController()
  idp.setTokenEndpointDelay(() => {
    gone.abort()
    return 1_000
  })
  await t.rejects(
    apiCall(jar, `${url}/orders/x`, {
      method: 'POST',
      body: '{"order":1}',
      headers: { 'content-type': 'application/json' },
      signal: gone.signal,
    }),
  )
  idp.setTokenEndpointDelay(0)
  await pollUntil(async () => idp.stats.refreshGrants === 1)
  t.pass('the token was still replaced, for the next request')
  // A replay would go as the refresh's answer came back, before the next
  // request could be answered with the token that answer brought.
  const next = await apiCall(jar, `${url}/orders/x`)
  t.equal(next.status, 200, 'the next request goes with the new token')
  t.not(orders.requests.at(-1)?.authorization, `Bearer ${token}`)
  t.same(
    orders.requests.filter((r) => r.method === 'POST').map((r) => r.authorization),
    [`Bearer ${token}`],
    'the upstream saw the refused request once, and no replay',
  )
  t.equal(idp.stats.refreshGrants, 1)
})
