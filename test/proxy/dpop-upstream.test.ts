import { decodeJwt } from 'jose'
import t, { type Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { type DpopUpstream, DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'
import { browserHeaders, openSocket, type Refused, wsUpstream, wsUrl } from '../helpers/websocket.js'

/**
 * `requireBinding`: the client is registered with `dpop_bound_access_tokens`,
 * so the IdP refuses every token request without a proof; without it, the
 * IdP binds the tokens asked for with one, and a `dpop: false` route's
 * token, asked for without, stays bearer.
 */
async function setup(t: Test, requireBinding = true) {
  let idp: DevIdp | undefined
  const verifier = new DpopVerifier((token) => boundTo(idp!, token))
  const dpopUpstream: DpopUpstream = await startDpopUpstream(verifier)
  t.teardown(() => dpopUpstream.close())
  const ws = await wsUpstream(t)
  const stack = await startStack(t, {
    idp: { dpopNonce: true },
    client: { dpopBoundAccessTokens: requireBinding },
    config: { oidc: { dpop: true } },
    routes: (echo) => [
      route('/api/orders', dpopUpstream.url, { rewritePath: '/v1/orders' }),
      route('/api/legacy', echo, { dpop: false, scopes: ['openid'] }),
      route('/api/live', ws.url, { websocket: true }),
    ],
  })
  idp = stack.idp
  const { jar } = await login(stack.gateway.url)
  return { stack, jar, verifier, dpopUpstream, ws }
}

t.test(
  'every upstream request carries a proof a resource server accepts; a dpop: false route gets a bearer token',
  async (t) => {
    const { stack, jar, dpopUpstream } = await setup(t, false)
    const base = stack.gateway.url
    const answers = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => apiCall(jar, `${base}/api/orders/${i}?page=2#frag`)),
      apiCall(jar, `${base}/api/orders`, {
        method: 'POST',
        body: '{"a":1}',
        headers: { 'content-type': 'application/json' },
      }),
      apiCall(jar, `${base}/api/orders/x`, { method: 'DELETE' }),
    ])
    t.same(
      answers.map((a) => a.status).filter((s) => s !== 200),
      [],
      'every request is served',
    )
    t.same(
      dpopUpstream.verdicts.filter((v) => !v.ok),
      [],
      'every proof holds',
    )
    const jtis = dpopUpstream.verdicts.map((v) => (v.ok && v.scheme === 'DPoP' ? v.jti : ''))
    t.equal(new Set(jtis).size, 22, 'no jti is reused')
    t.equal(dpopUpstream.seen[0]!.headers.authorization?.startsWith('DPoP '), true)

    const forged = await apiCall(jar, `${base}/api/orders`, { headers: { dpop: 'forged.by.client' } })
    t.equal(forged.status, 200, "a client's own DPoP header is replaced by the gateway's proof")

    const legacy = await apiCall(jar, `${base}/api/legacy`)
    t.equal(legacy.status, 200, legacy.text)
    const seen = stack.upstream.requests.at(-1)!
    t.match(seen.authorization, /^Bearer /, 'the dpop: false route gets a bearer token')
    t.equal(seen.headers.dpop, undefined, 'and no proof')
    t.equal(await boundTo(stack.idp, seen.authorization!.slice(7)), undefined, 'its token is not bound')
  },
)

t.test(
  'an IdP that requires bound tokens refuses a dpop: false route its own token: that route gets a 403, the session stays',
  async (t) => {
    const { stack, jar } = await setup(t)
    const base = stack.gateway.url
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
    const refreshes = stack.idp.stats.refreshGrants
    const legacy = await apiCall(jar, `${base}/api/legacy`)
    t.equal(legacy.status, 403, 'the route is refused, not the session')
    t.match(legacy.text, /without a DPoP proof/, 'the answer names the likely cause')
    t.equal(stack.idp.stats.refreshGrants, refreshes, 'no refresh token was spent')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session still serves other routes')
  },
)

t.test(
  "the upstream's use_dpop_nonce is answered once with its nonce, then remembered for its origin",
  async (t) => {
    const { stack, jar, dpopUpstream } = await setup(t)
    const base = stack.gateway.url
    dpopUpstream.rotateNonce()
    const first = await apiCall(jar, `${base}/api/orders`, {
      method: 'POST',
      body: 'small',
      headers: { 'content-type': 'text/plain' },
    })
    t.equal(first.status, 200, 'the request is replayed with the nonce, its body too')
    t.equal(dpopUpstream.challenges(), 1)
    const again = await Promise.all(Array.from({ length: 5 }, () => apiCall(jar, `${base}/api/orders`)))
    t.same(
      again.map((a) => a.status),
      [200, 200, 200, 200, 200],
    )
    t.equal(dpopUpstream.challenges(), 1, 'later requests carry the remembered nonce')

    dpopUpstream.rotateNonce()
    const large = await apiCall(jar, `${base}/api/orders`, {
      method: 'POST',
      body: 'x'.repeat(64 * 1024 + 1),
      headers: { 'content-type': 'text/plain' },
    })
    t.equal(
      large.status,
      503,
      'a body too large to hold is not replayed: the browser is told to send it again',
    )
    t.equal(large.headers.get('www-authenticate'), null, 'the challenge is not passed on')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the next request has learnt the nonce')
    t.equal(dpopUpstream.challenges(), 2)
  },
)

t.test(
  'an upstream URL written with capitals: its nonce is remembered under the origin proofs name',
  async (t) => {
    let idp: DevIdp | undefined
    const dpopUpstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
    t.teardown(() => dpopUpstream.close())
    const upstream = dpopUpstream.url.replace('http:', 'HTTP:')
    t.not(upstream, dpopUpstream.url)
    const stack = await startStack(t, {
      config: { oidc: { dpop: true } },
      routes: () => [route('/api/orders', upstream)],
    })
    idp = stack.idp
    const { jar } = await login(stack.gateway.url)
    dpopUpstream.rotateNonce()
    const answers = []
    for (let i = 0; i < 3; i++) answers.push((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status)
    t.same(answers, [200, 200, 200], 'each request is served')
    t.equal(dpopUpstream.challenges(), 1, 'one challenge: later proofs carry the nonce')
  },
)

const TEXT = { 'content-type': 'text/plain' }

t.test('the nonce of every answer is remembered, the answer to a replay included', async (t) => {
  const { stack, jar, dpopUpstream } = await setup(t)
  const base = stack.gateway.url
  dpopUpstream.rotateNonce()
  dpopUpstream.nonceWithEveryAnswer()
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) statuses.push((await apiCall(jar, `${base}/api/orders/${i}`)).status)
  t.same(statuses, [200, 200, 200, 200])
  t.equal(
    dpopUpstream.challenges(),
    1,
    "one challenge: each answer's nonce, the replay's included, goes with the next request",
  )
  const large = await apiCall(jar, `${base}/api/orders`, {
    method: 'POST',
    body: 'x'.repeat(100 * 1024),
    headers: TEXT,
  })
  t.equal(large.status, 200, 'a body too large to replay is sent with the nonce the last answer gave')
  t.equal(dpopUpstream.challenges(), 1)
})

t.test(
  "after a refused token and a refresh, the replay's use_dpop_nonce is answered once more",
  async (t) => {
    const { stack, jar, dpopUpstream } = await setup(t)
    dpopUpstream.refuseNextToken({ rotateNonce: true })
    const answer = await apiCall(jar, `${stack.gateway.url}/api/orders`, {
      method: 'POST',
      body: 'small',
      headers: TEXT,
    })
    t.equal(answer.status, 200, answer.text)
    t.equal(dpopUpstream.refusals(), 1, 'the token was refused once')
    t.equal(dpopUpstream.challenges(), 1, 'the replay with the new token was challenged once')
    t.equal(stack.idp.stats.refreshGrants, 1, 'one refresh')
    t.match(
      dpopUpstream.verdicts.at(-1),
      { ok: true },
      "the last proof carries the new token and the upstream's nonce",
    )
  },
)

t.test(
  "after a use_dpop_nonce, the replay's refused token is replaced and the request replayed",
  async (t) => {
    const { stack, jar, dpopUpstream } = await setup(t)
    dpopUpstream.rotateNonce()
    dpopUpstream.refuseNextToken()
    const answer = await apiCall(jar, `${stack.gateway.url}/api/orders`, {
      method: 'POST',
      body: 'small',
      headers: TEXT,
    })
    t.equal(answer.status, 200, answer.text)
    t.equal(dpopUpstream.challenges(), 1)
    t.equal(dpopUpstream.refusals(), 1)
    t.equal(stack.idp.stats.refreshGrants, 1, 'one refresh')
  },
)

t.test(
  'each challenge is answered once: a nonce that expires before every replay is a 503 to the browser',
  async (t) => {
    const { stack, jar, dpopUpstream } = await setup(t)
    dpopUpstream.challengeEveryRequest()
    const answer = await apiCall(jar, `${stack.gateway.url}/api/orders`)
    t.equal(answer.status, 503, 'the second challenge is not replayed')
    t.match(JSON.parse(answer.text), { error: 'upstream_dpop_nonce' })
    t.equal(dpopUpstream.challenges(), 2, 'one replay, not a loop')
  },
)

t.test(
  "negative control: the test upstream's verifier refuses a proof for another token, another URL, or a replayed jti",
  async (t) => {
    const { stack, jar, verifier, dpopUpstream } = await setup(t)
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders/a`)).status, 200)
    const good = dpopUpstream.seen.at(-1)!
    const fresh = new DpopVerifier((token) => boundTo(stack.idp, token))
    const otherToken = { ...good, headers: { ...good.headers, authorization: 'DPoP another-token' } }
    t.match(await fresh.verify(otherToken), { ok: false, reason: /ath/ })
    t.match(await fresh.verify({ ...good, url: good.url.replace('/v1/orders/a', '/v1/orders/b') }), {
      ok: false,
      reason: /htu/,
    })
    t.match(await fresh.verify({ ...good, method: 'POST' }), { ok: false, reason: /htm/ })
    t.match(await verifier.verify(good), { ok: false, reason: 'jti replayed' })
  },
)

t.test('a WebSocket upgrade carries a proof for the upstream URL it is sent to', async (t) => {
  const { stack, jar, ws } = await setup(t)
  const socket = await openSocket(wsUrl(stack, '/api/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => socket.terminate())
  const headers = ws.upgrades.at(-1)!
  const verifier = new DpopVerifier((token) => boundTo(stack.idp, token))
  t.match(await verifier.verify({ method: 'GET', url: `${ws.url}/api/live/feed`, headers }), { ok: true })
})

t.test(
  "a WebSocket upgrade answers the upstream's use_dpop_nonce once, and later upgrades carry the nonce",
  async (t) => {
    let nonce = 'first-nonce'
    let challenges = 0
    /** Rotates the nonce on every upgrade it challenges, when set: a nonce the gateway can never match. */
    let everyTime = false
    const ws = await wsUpstream(t, {
      verifyClient: (info, answer) => {
        const proof = info.req.headers.dpop
        const claims = typeof proof === 'string' ? decodeJwt(proof) : {}
        if (!everyTime && claims.nonce === nonce) return answer(true)
        challenges++
        if (everyTime) nonce = `nonce-${challenges}`
        answer(false, 401, 'Unauthorized', {
          'WWW-Authenticate': 'DPoP error="use_dpop_nonce", error_description="nonce required"',
          'DPoP-Nonce': nonce,
        })
      },
    })
    const stack = await startStack(t, {
      config: { oidc: { dpop: true } },
      routes: () => [route('/api/live', ws.url, { websocket: true })],
    })
    const { jar } = await login(stack.gateway.url)
    const open = () => openSocket(wsUrl(stack, '/api/live/feed'), browserHeaders(stack, jar))

    const first = await open()
    t.teardown(() => first.terminate())
    t.equal(challenges, 1, 'challenged once, then opened with the nonce')
    t.equal(ws.upgrades.length, 1)
    t.equal(decodeJwt(ws.upgrades[0]!.dpop as string).nonce, 'first-nonce')

    const second = await open()
    t.teardown(() => second.terminate())
    t.equal(challenges, 1, 'the next upgrade carries the remembered nonce')

    everyTime = true
    const refused = await open().then(
      (socket) => {
        socket.terminate()
        return undefined
      },
      (err: Refused) => err,
    )
    // As an API call's: the browser may try again (upgrade-challenged-again-for-a-nonce-answers-as-an-api-call).
    t.equal(refused?.status, 503, 'a second challenge is not answered again: the upgrade fails')
    t.match(JSON.parse(refused?.body ?? '{}'), { error: 'upstream_dpop_nonce' })
    t.equal(challenges, 3, 'one replay, no more')
  },
)

t.test(
  'a WebSocket upgrade refused for its DPoP-bound token is dialled again with a new token and a proof for it',
  async (t) => {
    const refused = new Set<string>()
    let refusals = 0
    const ws = await wsUpstream(t, {
      verifyClient: (info, answer) => {
        if (!refused.has(info.req.headers.authorization ?? '')) return answer(true)
        refusals++
        answer(false, 401, 'Unauthorized', { 'WWW-Authenticate': 'DPoP error="invalid_token"' })
      },
    })
    const stack = await startStack(t, {
      config: { oidc: { dpop: true } },
      routes: () => [route('/api/live', ws.url, { websocket: true })],
    })
    const { jar } = await login(stack.gateway.url)
    const open = () => openSocket(wsUrl(stack, '/api/live/feed'), browserHeaders(stack, jar))
    ;(await open()).terminate()
    const revoked = ws.upgrades[0]!.authorization!
    refused.add(revoked)

    const socket = await open()
    t.teardown(() => socket.terminate())
    t.equal(refusals, 1, 'refused once, then opened')
    const replayed = ws.upgrades[1]!
    t.not(replayed.authorization, revoked, 'with a new token')
    const verifier = new DpopVerifier((token) => boundTo(stack.idp, token))
    t.match(
      await verifier.verify({ method: 'GET', url: `${ws.url}/api/live/feed`, headers: replayed }),
      { ok: true },
      'and a proof made for it',
    )
  },
)
