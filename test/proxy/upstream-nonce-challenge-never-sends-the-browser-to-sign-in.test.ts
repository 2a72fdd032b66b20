import t, { type Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/**
 * An upstream's 401 `use_dpop_nonce` (RFC 9449 §9) asks the DPoP client,
 * the gateway, for a nonce; the browser holds no key and cannot answer it.
 * Passed on, it was a 401, which the README's SPA wrapper answers by
 * sending the user to sign in: a healthy session signed in again, its
 * upload lost, and after a second challenge (an upstream whose nodes do
 * not share nonces) no sign-in mended anything. A challenge the gateway
 * cannot replay is now a 503 with Retry-After, which says "send it again".
 */
async function setup(t: Test) {
  let idp: DevIdp | undefined
  const dpopUpstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
  t.teardown(() => dpopUpstream.close())
  const stack = await startStack(t, {
    config: { oidc: { dpop: true } },
    client: { dpopBoundAccessTokens: true },
    routes: () => [route('/api/orders', dpopUpstream.url)],
  })
  idp = stack.idp
  const { jar } = await login(stack.gateway.url)
  return { base: stack.gateway.url, jar, dpopUpstream }
}

const TEXT = { 'content-type': 'text/plain' }

t.test(
  'a challenge to a body too large to replay is a 503 to send again, and the retry carries the nonce',
  async (t) => {
    const { base, jar, dpopUpstream } = await setup(t)
    dpopUpstream.rotateNonce()
    const upload = { method: 'POST', body: 'x'.repeat(64 * 1024 + 1), headers: TEXT }
    const first = await apiCall(jar, `${base}/api/orders`, upload)
    t.equal(first.status, 503, first.text)
    t.match(JSON.parse(first.text), { error: 'upstream_dpop_nonce' })
    t.equal(first.headers.get('retry-after'), '1')
    t.equal(first.headers.get('www-authenticate'), null, "the upstream's challenge is not the browser's")
    t.equal(dpopUpstream.challenges(), 1)
    const again = await apiCall(jar, `${base}/api/orders`, upload)
    t.equal(again.status, 200, 'sent again, it carries the nonce the challenge gave')
    t.equal(dpopUpstream.challenges(), 1)
  },
)

t.test('a second challenge, after the replay carried the nonce, is a 503 too', async (t) => {
  const { base, jar, dpopUpstream } = await setup(t)
  dpopUpstream.challengeEveryRequest()
  const answer = await apiCall(jar, `${base}/api/orders`)
  t.equal(answer.status, 503, answer.text)
  t.match(JSON.parse(answer.text), { error: 'upstream_dpop_nonce' })
  t.equal(dpopUpstream.challenges(), 2, 'one replay, not a loop')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')
})

t.test(
  'a challenge whose nonce no proof may carry is not replayed, and is a 503 too; a request without a proof gets the 401 as it came',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const stack = await startStack(t, {
      config: { oidc: { dpop: true } },
      routes: () => [
        route('/api/orders', upstream.url),
        route('/api/plain', upstream.url, { dpop: false, scopes: ['openid'] }),
      ],
    })
    const { jar } = await login(stack.gateway.url)
    upstream.answer((res) =>
      res
        .writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n'.repeat(2048) })
        .end(),
    )
    const answer = await apiCall(jar, `${stack.gateway.url}/api/orders`)
    t.equal(answer.status, 503, answer.text)
    t.match(JSON.parse(answer.text), { error: 'upstream_dpop_nonce' })
    t.equal(upstream.seen.length, 1, 'a nonce of 2 KiB is not replayed')
    t.match(upstream.seen[0]!.headers.authorization, /^DPoP /)

    const plain = await apiCall(jar, `${stack.gateway.url}/api/plain`)
    t.equal(plain.status, 401, "a bearer request's challenge is the upstream's answer")
    t.match(upstream.seen.at(-1)!.headers.authorization, /^Bearer /)
  },
)
