import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo, watchProofs } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

function lastToken(requests: readonly { authorization: string | undefined }[]): string {
  const authorization = requests.at(-1)?.authorization ?? ''
  return authorization.replace(/^(Bearer|DPoP) /, '')
}

t.test(
  'with oidc.dpop every token request carries a proof, nonce challenges cost one retry, and the tokens are bound to the session key',
  async (t) => {
    const clock = new TestClock()
    const stack = await startStack(t, {
      accessTokenTtl: 60,
      idp: { dpopNonce: true },
      client: { dpopBoundAccessTokens: true },
      config: { oidc: { dpop: true } },
      gateway: { now: clock.now },
      routes: (upstream) => [route('/api/orders', upstream)],
    })
    const { idp, gateway, upstream } = stack
    const proofs = watchProofs(idp)

    const { finalLocation } = await login(gateway.url)
    t.equal(finalLocation, `${gateway.url}/`, 'the login completes against an IdP that requires DPoP')
    t.equal(idp.stats.authorizationCodeGrants, 1)
    t.equal(idp.stats.dpopNonceChallenges, 1, 'the first proof had no nonce; the IdP sent one')
    t.equal(proofs.length, 2, 'the code exchange was retried once, with a new proof')
    t.not(proofs[0]!.jti, proofs[1]!.jti, 'the retry is a new proof')
    t.equal(proofs[1]!.nonce !== undefined, true, 'the retry carries the nonce')
    await proofs.settled()
    const jkt = proofs[0]!.jkt

    const { jar } = await login(gateway.url, { jar: (await login(gateway.url)).jar })
    t.equal(idp.stats.dpopNonceChallenges, 1, 'later logins reuse the nonce remembered for the IdP')
    await proofs.settled()
    t.not(proofs.at(-1)!.jkt, jkt, 'each login makes a new key')
    const sessionJkt = proofs.at(-1)!.jkt

    t.equal((await apiCall(jar, `${gateway.url}/api/orders`)).status, 200)
    t.equal(await boundTo(idp, lastToken(upstream.requests)), sessionJkt, 'the login token is bound')

    clock.advance(61_000)
    idp.resetStats()
    t.equal((await apiCall(jar, `${gateway.url}/api/orders`)).status, 200)
    t.equal(idp.stats.refreshGrants, 1)
    t.equal(idp.stats.refreshReplays, 0)
    t.equal(idp.stats.dpopTokenRequests, idp.stats.tokenRequests, 'the refresh carried a proof')
    t.equal(proofs.at(-1)!.grant, 'refresh_token')
    await proofs.settled()
    t.equal(proofs.at(-1)!.jkt, sessionJkt, 'with the same key as the login')
    t.equal(
      await boundTo(idp, lastToken(upstream.requests)),
      sessionJkt,
      'the refreshed token is bound to it',
    )
    t.equal(new Set(proofs.map((p) => p.jti)).size, proofs.length, 'no proof was sent twice')
  },
)

t.test(
  'a route with its own resource gets a bound token with a proof; with dpop: false, a bearer token without one',
  async (t) => {
    const orders = 'https://orders.example'
    const legacy = 'https://legacy.example'
    const stack = await startStack(t, {
      idp: { resourceIndicators: { resources: { [orders]: { scopes: ['orders.read'] }, [legacy]: {} } } },
      config: { oidc: { dpop: true } },
      routes: (upstream) => [
        route('/api/orders', upstream, { resource: orders }),
        route('/api/legacy', upstream, { resource: legacy, dpop: false }),
      ],
    })
    const { idp, gateway, upstream } = stack
    const proofs = watchProofs(idp)
    const { jar } = await login(gateway.url)
    await proofs.settled()
    const sessionJkt = proofs.at(-1)!.jkt

    idp.resetStats()
    t.equal((await apiCall(jar, `${gateway.url}/api/orders`)).status, 200)
    t.equal(idp.stats.dpopTokenRequests, 1, 'the per-resource refresh carried a proof')
    t.equal(await boundTo(idp, lastToken(upstream.requests)), sessionJkt, "the route's token is bound")

    idp.resetStats()
    t.equal((await apiCall(jar, `${gateway.url}/api/legacy`)).status, 200)
    t.equal(idp.stats.refreshGrants, 1)
    t.equal(idp.stats.dpopTokenRequests, 0, 'no proof for the dpop: false route')
    t.equal(await boundTo(idp, lastToken(upstream.requests)), undefined, 'its token is a bearer token')
    t.equal(idp.stats.refreshReplays, 0)
  },
)

t.test(
  'an IdP that does not advertise the configured algorithm makes sign-in refuse, naming both',
  async (t) => {
    const stack = await startStack(t, {
      config: { oidc: { dpop: true, dpopAlgorithm: 'ES384' } },
      routes: (upstream) => [route('/api/orders', upstream)],
    })
    const answer = await fetch(`${stack.gateway.url}/auth/login`, { redirect: 'manual' })
    t.not(answer.status, 302)
    t.match(await answer.text(), /ES384/)
  },
)

t.test(
  'dpopAlgorithm: EdDSA signs with Ed25519 under the name an IdP that lists only EdDSA asks for',
  async (t) => {
    let idp: DevIdp | undefined
    const dpopUpstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
    t.teardown(() => dpopUpstream.close())
    const stack = await startStack(t, {
      idp: { dpopNonce: true, dpopAlgorithms: ['EdDSA'] },
      client: { dpopBoundAccessTokens: true },
      config: { oidc: { dpop: true, dpopAlgorithm: 'EdDSA' } },
      routes: () => [route('/api/orders', dpopUpstream.url)],
    })
    idp = stack.idp
    const proofs = watchProofs(stack.idp)
    const { jar, finalLocation } = await login(stack.gateway.url)
    t.equal(finalLocation, `${stack.gateway.url}/`, 'signed in')
    t.same(new Set(proofs.map((p) => p.alg)), new Set(['EdDSA']), 'every token-endpoint proof says EdDSA')
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
    t.match(dpopUpstream.verdicts, [{ ok: true, alg: 'EdDSA' }], 'the upstream proof holds, named EdDSA too')
    await proofs.settled()
    t.equal(proofs[0]!.jwk.crv, 'Ed25519', 'the key is an Ed25519 key')
  },
)

t.test(
  'an IdP that ignores the proof and issues a Bearer token: refused, and said so, not sent upstream as DPoP',
  async (t) => {
    const stack = await startStack(t, {
      idp: { dpop: false },
      config: { oidc: { dpop: true } },
      routes: (upstream) => [route('/api/orders', upstream)],
    })
    const { idp, gateway, upstream } = stack
    t.equal(gateway.app.gatehouse.oidc.metadata?.dpop_signing_alg_values_supported, undefined)
    const { callback } = await login(gateway.url)
    // RFC 9449 §5: the client may discard a Bearer answer to a request with a proof.
    t.equal(callback.status, 400, 'no session from an unbound token')
    t.match(callback.text, /Bearer access token.*DPoP proof.*oidc\.dpop/s, 'the page says what is wrong')
    t.equal(idp.stats.authorizationCodeGrants, 1, 'refused after the code exchange')
    t.equal(upstream.requests.length, 0, 'no token went upstream')
  },
)
