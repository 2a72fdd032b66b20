/**
 * An exchange the IdP refuses for good (`invalid_grant`, an unknown code)
 * was asked again by every request that came after the refusing flight:
 * 200 parallel requests of one session made 19 exchanges (15 for an
 * unknown code), and each request after them one more. And an answer
 * whose `issued_token_type` is no credential for an upstream (an ID token,
 * a refresh token) was sent upstream as a Bearer access token. Now a refusal, the
 * IdP's (403 `token_exchange_refused`) or the gateway's of such an answer
 * (502 `token_exchange_wrong_token_type`), is answered again for
 * REFUSAL_MEMORY (30 s) without asking the IdP, the same answer. Against
 * the dev IdP, whose edge gives the answers a real one would not, on a
 * hand-moved clock.
 */
import t from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'

const EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
/** src/tokens/refusal-memory.ts's REFUSAL_MEMORY, ms. */
const MEMORY = 30_000

const issued = (type: string | undefined) => ({
  status: 200,
  body: {
    access_token: 'an-id-token-not-for-upstream',
    token_type: 'Bearer',
    expires_in: 60,
    ...(type === undefined ? {} : { issued_token_type: type }),
  },
})

const REFUSED = '403 token_exchange_refused'
const WRONG_TYPE = '502 token_exchange_wrong_token_type'

for (const [name, answer, expected] of [
  ['invalid_grant', { status: 400, body: { error: 'invalid_grant' } }, REFUSED],
  ['an unknown error code', { status: 400, body: { error: 'zzz' } }, REFUSED],
  ['an ID token issued', issued('urn:ietf:params:oauth:token-type:id_token'), WRONG_TYPE],
  ['a refresh token issued', issued('urn:ietf:params:oauth:token-type:refresh_token'), WRONG_TYPE],
] as const) {
  t.test(`an exchange refused with ${name} asks the IdP once per ${MEMORY / 1_000} s`, async (t) => {
    const clock = new TestClock()
    const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 600, gateway: { now: clock.now } })
    t.teardown(() => stack.close())
    const [url] = stack.urls
    t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200, 'signed in')
    stack.idp.answer('token', { ...answer, grantType: EXCHANGE_GRANT })
    const before = stack.idp.stats.tokenRequests
    const storm = await Promise.all(Array.from({ length: 200 }, () => apiCall(stack.jar, `${url}/ledger/a`)))
    t.same(
      [...new Set(storm.map((r) => `${r.status} ${r.json().error}`))],
      [expected],
      'every request refused alike, nothing forwarded',
    )
    t.equal(stack.upstreams.ledger!.requests.length, 0, 'the upstream saw nothing')
    for (let i = 0; i < 3; i++) {
      clock.advance(5_000)
      t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, Number(expected.slice(0, 3)))
    }
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'the IdP was asked once')
    t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200, 'the session and other routes carry on')

    clock.advance(MEMORY)
    stack.idp.answer('token')
    t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, 200, 'once it is over: asked, and given')
    t.equal(stack.idp.stats.tokenRequests - before, 2)
  })
}

t.test('an answer issuing an access token, a JWT, or not saying which, is forwarded', async (t) => {
  const clock = new TestClock()
  const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 600, gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200)
  const before = stack.idp.stats.tokenRequests
  for (const type of [ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt', undefined]) {
    stack.idp.answer('token', { ...issued(type), grantType: EXCHANGE_GRANT })
    t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, 200, `${type ?? 'no issued_token_type'}`)
    // Past the exchanged token's 60 s: the next request exchanges again.
    clock.advance(61_000)
  }
  t.equal(stack.idp.stats.tokenRequests - before, 3, 'each was a new exchange')
})
