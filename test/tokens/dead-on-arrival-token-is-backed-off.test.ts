/**
 * An IdP whose answer's token has no life left when it arrives
 * (`expires_in: 0`, or 1: the gateway counts a second short): the request
 * is answered 503, as it must be, but nothing held the IdP back, so every
 * request asked it again. 200 requests at a `token: exchange` route made
 * 18 exchanges, and each request after them one more, for as long as the
 * IdP answered so; a session's refresh the same, each one redeeming the
 * refresh token. Such an answer is now waited out as an outage is: its
 * Retry-After passes before the IdP is asked again. Against the real dev
 * IdP, whose edge gives the answer, on a hand-moved clock.
 */
import t from 'tap'
import { retryAfterOf } from '../../src/errors.js'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'

const EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

for (const [grant, path, code] of [
  [EXCHANGE_GRANT, '/ledger/a', 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE'],
  ['refresh_token', '/api/x', 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'],
] as const) {
  t.test(`a ${grant} answer whose token is dead on arrival is asked for once per Retry-After`, async (t) => {
    const clock = new TestClock()
    const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 60, gateway: { now: clock.now } })
    t.teardown(() => stack.close())
    const [url] = stack.urls
    t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200, 'signed in')
    // The login's token is due, so the refresh's answer is the one used.
    if (grant === 'refresh_token') clock.advance(61_000)
    stack.idp.answer('token', {
      status: 200,
      body: {
        access_token: 'dead',
        token_type: 'Bearer',
        issued_token_type: ACCESS_TOKEN_TYPE,
        expires_in: 0,
      },
      grantType: grant,
    })
    const before = stack.idp.stats.tokenRequests
    const storm = await Promise.all(Array.from({ length: 200 }, () => apiCall(stack.jar, `${url}${path}`)))
    t.same(new Set(storm.map((r) => r.status)), new Set([503]), 'no dead token forwarded')
    for (let i = 0; i < 3; i++) {
      const again = await apiCall(stack.jar, `${url}${path}`)
      t.equal(again.status, 503)
      t.ok(Number(again.headers.get('retry-after')) >= 1, 'with a Retry-After')
    }
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'the IdP was asked once')
    t.equal(
      storm[0]!.json().error,
      grant === EXCHANGE_GRANT ? 'token_exchange_unavailable' : 'token_refresh_unavailable',
    )

    clock.advance(retryAfterOf(code)! * 1_000)
    stack.idp.answer('token')
    t.equal((await apiCall(stack.jar, `${url}${path}`)).status, 200, 'past the Retry-After, asked again')
    t.equal(stack.idp.stats.tokenRequests - before, 2)
  })
}
