/**
 * A token's expiry is counted from when its request was sent, less a
 * second for the IdP's whole-second `exp`: never later than the `exp` the
 * IdP wrote, however slow the token endpoint. Counted from the answer, a
 * slow IdP's latency was added to every token's life, and upstreams got
 * tokens past their `exp`.
 */
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { ORDERS, startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const DELAY = 1_200

t.test('login, refresh and client-credentials tokens expire no later than their exp', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.idp.setTokenEndpointDelay(DELAY)
  const { jar } = await login(stack.gateway.url)
  const store = stack.gateway.app.gatehouse.stores.sessions
  const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
  const check = async (what: string, token: string, expiresAt: number, offset: number) => {
    const exp = (await stack.idp.describe(token))?.exp as number
    t.ok(expiresAt - offset <= exp * 1000, `${what}: ${expiresAt - offset} <= exp ${exp * 1000}`)
    t.ok(expiresAt - offset > exp * 1000 - 1_000 - DELAY - 1_000, `${what}: not needlessly early`)
  }
  const login_ = (await store.get(ref, stack.clock.now()))!
  await check('login', login_.tokens.accessToken, login_.tokens.accessTokenExpiresAt, 0)

  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
  const refreshed = (await store.get(ref, stack.clock.now()))!
  t.not(refreshed.tokens.accessToken, login_.tokens.accessToken)
  await check('refresh', refreshed.tokens.accessToken, refreshed.tokens.accessTokenExpiresAt, 61_000)

  const client = await stack.gateway.app.gatehouse.oidc.clientCredentials(['reports.read'])
  await check('client credentials', client.accessToken, client.expiresAt, 61_000)
})

t.test("a route's own token (RFC 8707 resource) expires no later than its exp", async (t) => {
  const clock = new TestClock()
  const stack = await startAudienceStack({ gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  stack.idp.setTokenEndpointDelay(DELAY)
  t.equal((await apiCall(stack.jar, `${stack.urls[0]}/orders/a`)).status, 200)
  const store = stack.apps[0]!.gatehouse.stores.sessions
  const session = (await store.get(
    sessionRefOf(stack.apps[0]!, stack.jar.get(stack.urls[0]!, 'gatehouse')!),
    clock.now(),
  ))!
  const [key, token] = Object.entries(session.tokens.audiences ?? {})[0]!
  t.match(key, ORDERS)
  const exp = (await stack.idp.describe(token.accessToken))?.exp as number
  t.ok(token.accessTokenExpiresAt <= exp * 1000, `${token.accessTokenExpiresAt} <= exp ${exp * 1000}`)
})
