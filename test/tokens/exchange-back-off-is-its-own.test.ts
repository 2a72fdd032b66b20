import t from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'

const EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'

/**
 * An IdP may rate-limit one grant and not another. A token exchange's
 * Retry-After once held back every IdP call of the session: its refreshes,
 * and so every route, answered the exchange's 503 for as long as the IdP
 * asked (up to 5 minutes), the IdP never asked.
 */
t.test(
  "an exchange's Retry-After holds back that audience's exchanges, not the session's refresh",
  async (t) => {
    const clock = new TestClock()
    const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 60, gateway: { now: clock.now } })
    t.teardown(() => stack.close())
    const [url] = stack.urls
    t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200, 'signed in')
    stack.idp.answer('token', {
      status: 429,
      headers: { 'retry-after': '300' },
      body: 'slow down',
      grantType: EXCHANGE_GRANT,
    })
    const limited = await apiCall(stack.jar, `${url}/ledger/a`)
    t.equal(limited.status, 503, "the exchange route waits out the IdP's Retry-After")
    t.equal(limited.json().error, 'token_exchange_unavailable')
    t.equal(limited.headers.get('retry-after'), '300')

    clock.advance(61_000)
    const before = stack.idp.stats.refreshGrants
    const api = await apiCall(stack.jar, `${url}/api/x`)
    t.equal(api.status, 200, "a plain route's refresh goes ahead: the refresh grant was not limited")
    t.equal(stack.idp.stats.refreshGrants, before + 1, 'the IdP was asked for it')
    const still = await apiCall(stack.jar, `${url}/ledger/a`)
    t.equal(still.status, 503, 'the exchange is still held back')
    t.equal(still.headers.get('retry-after'), '239', 'for what is left of its wait')
  },
)
