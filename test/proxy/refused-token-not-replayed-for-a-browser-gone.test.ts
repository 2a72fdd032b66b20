import t from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { apiCall } from '../helpers/login.js'

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
  // The refresh the refusal causes takes a second; the browser leaves after 300 ms.
  idp.setTokenEndpointDelay(1_000)
  const gone = new AbortController()
  setTimeout(() => gone.abort(), 300)
  await t.rejects(
    apiCall(jar, `${url}/orders/x`, {
      method: 'POST',
      body: '{"order":1}',
      headers: { 'content-type': 'application/json' },
      signal: gone.signal,
    }),
  )
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  t.equal(idp.stats.refreshGrants, 1, 'the token was still replaced, for the next request')
  t.equal(orders.requests.length, 1, 'the upstream saw the refused request once, and no replay')
  idp.setTokenEndpointDelay(0)
  t.equal((await apiCall(jar, `${url}/orders/x`)).status, 200, 'the next request goes with the new token')
  t.equal(idp.stats.refreshGrants, 1)
})
