/**
 * RFC 9449 §9: "the nonces provided by an authorization server and a
 * resource server are different and should not be confused with one
 * another since nonces will be only accepted by the server that issued
 * them". The upstream proofs took their nonces from the same memory as the
 * default IdP's, by origin alone: an upstream behind the IdP's host name
 * (one ingress, `/auth` to the IdP, `/api` to the APIs) was sent the IdP's
 * nonce in its first proof, and the IdP the upstream's in the next refresh,
 * which it refused with `use_dpop_nonce`: a round trip at the IdP after
 * every upstream answer with a nonce, and a 503 `dpop_proof_refused` when an
 * upstream answer landed between the challenge and its retry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { decodeJwt } from 'jose'
import t from 'tap'
import { watchProofs } from '../helpers/dpop.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

t.test('an upstream on the IdP origin and the IdP each get only their own nonces', async (t) => {
  /** The `nonce` of each proof the upstream was sent, in order. */
  const upstreamSaw: unknown[] = []
  let issued = 0
  /** A resource server that hands out a nonce of its own with every answer (RFC 9449 §8.2, §9). */
  const upstream = (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    const proof = req.headers.dpop
    upstreamSaw.push(typeof proof === 'string' ? decodeJwt(proof).nonce : 'no proof')
    res.writeHead(200, { 'content-type': 'application/json', 'dpop-nonce': `upstream-${++issued}` }).end('{}')
  }
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    config: { oidc: { dpop: true } },
    client: { dpopBoundAccessTokens: true },
    idp: { dpopNonce: true, neighbour: { prefix: '/rs/', handle: upstream } },
    routes: (_, idp) => [route('/api/rs', idp.issuer, { rewritePath: '/rs' })],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.ok(stack.idp.stats.dpopNonceChallenges >= 1, 'the sign-in learnt the IdP nonce')

  t.equal((await apiCall(jar, `${base}/api/rs/orders`)).status, 200)
  t.same(
    upstreamSaw,
    [undefined],
    "the upstream's first proof carries no nonce: the IdP's is not the upstream's",
  )

  const challenges = stack.idp.stats.dpopNonceChallenges
  const proofs = watchProofs(stack.idp)
  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/rs/orders`)).status, 200, 'a refresh, then the upstream')
  await proofs.settled()
  t.equal(proofs.length, 1, 'one proof reached the token endpoint')
  t.not(proofs[0]!.nonce, 'upstream-1', "the refresh's proof does not carry the upstream's nonce")
  t.equal(stack.idp.stats.dpopNonceChallenges, challenges, 'and the IdP asked for no nonce')
  t.same(upstreamSaw, [undefined, 'upstream-1'], "the upstream's next proof carries its own latest nonce")
})
