/**
 * Only a challenge of the DPoP auth-scheme is a DPoP challenge (RFC 9449
 * §7.1, §9; RFC 9110 §11.6.1). A Bearer challenge whose realm is "dpop"
 * was read as one while any mention of the word did: the gateway replayed
 * the request for a nonce the upstream never asked a proof to carry, or
 * answered 502 for a proof the upstream never refused. A raw upstream, as
 * the header values are the test.
 */
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { rawUpstream } from '../helpers/http-server.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'

/** The answer to the first dial, then 200s; the gateway on a DPoP route to it, signed in. */
async function setup(t: Test, first: string) {
  let dials = 0
  const upstream = await rawUpstream(t, () => (++dials === 1 ? first : OK))
  const stack = await startStack(t, {
    config: { oidc: { dpop: true } },
    routes: () => [route('/api/orders', upstream.url)],
  })
  const { jar } = await login(stack.gateway.url)
  return { call: () => apiCall(jar, `${stack.gateway.url}/api/orders`), dials: () => dials }
}

const refusal = (challenge: string) =>
  `HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: ${challenge}\r\nDPoP-Nonce: n-1\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied`

for (const challenge of [
  'Bearer realm="dpop", error="use_dpop_nonce"',
  'Bearer error="use_dpop_nonce", realm="DPoP"',
  'Bearer realm="dpop", error="invalid_dpop_proof"',
]) {
  t.test(`${challenge} is a Bearer challenge: its 401 is the upstream's, not replayed`, async (t) => {
    const { call, dials } = await setup(t, refusal(challenge))
    const answer = await call()
    t.equal(answer.status, 401, answer.text)
    t.equal(answer.text, 'denied', "the upstream's own answer")
    t.equal(dials(), 1, 'one dial: no replay for a nonce')
  })
}

for (const challenge of [
  'Bearer realm="api", dpop error="use_dpop_nonce"',
  'DPOP algs="ES256", error="use_dpop_nonce"',
]) {
  t.test(`${challenge} carries a DPoP nonce challenge: replayed once with the nonce`, async (t) => {
    const { call, dials } = await setup(t, refusal(challenge))
    const answer = await call()
    t.equal(answer.status, 200, answer.text)
    t.equal(dials(), 2, 'the request, then its replay with the nonce')
  })
}
