/**
 * A resource server that checks DPoP proofs as RFC 9449 §4.3 and §7.1 ask,
 * with jose: one proof, `typ` dpop+jwt, an asymmetric `alg`, the signature
 * over the embedded public JWK, `htm` and `htu` against the request it came
 * with, `iat` within a minute, `jti` never seen before, `ath` the token's
 * hash, the JWK's thumbprint equal to the token's `cnf.jkt` (from the IdP's
 * own store, as introspection gives it) and, when it asks for them, its
 * current nonce.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { calculateJwkThumbprint, EmbeddedJWK, type JWK, jwtVerify } from 'jose'

export type Verdict =
  | { readonly ok: true; readonly scheme: 'DPoP'; readonly jti: string; readonly alg: string }
  /** An unbound token sent as Bearer, to a verifier that takes them (`acceptBearer`). */
  | { readonly ok: true; readonly scheme: 'Bearer' }
  | { readonly ok: false; readonly reason: string }

export interface ProofCheck {
  readonly method: string
  /** The URL as the server received it, query included. */
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

const MAX_AGE_S = 60

export class DpopVerifier {
  readonly #jtis = new Set<string>()
  readonly #jktOf: (token: string) => Promise<string | undefined>
  readonly #acceptBearer: boolean

  /**
   * `jktOf` says which key a token is bound to (`cnf.jkt`), or `undefined`
   * for a bearer token. `acceptBearer`: an unbound token may come as
   * `Bearer` without a proof, as at a server that serves clients with and
   * without DPoP; a bound one never may (RFC 9449 §7.1).
   */
  constructor(jktOf: (token: string) => Promise<string | undefined>, { acceptBearer = false } = {}) {
    this.#jktOf = jktOf
    this.#acceptBearer = acceptBearer
  }

  /** The proof's verdict; a valid proof's `jti` is spent by it. `nonce` is the one the server requires, if any. */
  async verify(check: ProofCheck, nonce?: string): Promise<Verdict> {
    const { authorization, dpop } = check.headers
    const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')
    if (this.#acceptBearer && bearer && dpop === undefined) {
      if ((await this.#jktOf(bearer[1]!)) !== undefined)
        return { ok: false, reason: 'a DPoP-bound token sent as Bearer, without a proof' }
      return { ok: true, scheme: 'Bearer' }
    }
    if (typeof dpop !== 'string' || dpop.includes(','))
      return { ok: false, reason: 'not exactly one DPoP header' }
    const match = /^DPoP (\S+)$/.exec(authorization ?? '')
    if (!match) return { ok: false, reason: 'the token is not sent with the DPoP scheme' }
    const token = match[1]!
    let payload: Record<string, unknown>
    let jwk: JWK
    let alg: string
    try {
      const verified = await jwtVerify(dpop, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'Ed25519', 'EdDSA'],
      })
      payload = verified.payload
      jwk = verified.protectedHeader.jwk as JWK
      alg = verified.protectedHeader.alg
    } catch (err) {
      return { ok: false, reason: `signature: ${(err as Error).message}` }
    }
    if ('d' in jwk) return { ok: false, reason: 'the header carries a private key' }
    if (payload.htm !== check.method) return { ok: false, reason: `htm ${String(payload.htm)}` }
    const url = new URL(check.url)
    if (payload.htu !== `${url.origin}${url.pathname}`)
      return { ok: false, reason: `htu ${String(payload.htu)}` }
    const iat = Number(payload.iat)
    if (!Number.isFinite(iat) || Math.abs(Date.now() / 1000 - iat) > MAX_AGE_S)
      return { ok: false, reason: 'iat not fresh' }
    if (payload.ath !== createHash('sha256').update(token).digest('base64url'))
      return { ok: false, reason: 'ath is not the hash of this token' }
    if (typeof payload.jti !== 'string' || payload.jti.length < 16) return { ok: false, reason: 'no jti' }
    if (this.#jtis.has(payload.jti)) return { ok: false, reason: 'jti replayed' }
    const jkt = await this.#jktOf(token)
    if (jkt === undefined || jkt !== (await calculateJwkThumbprint(jwk)))
      return { ok: false, reason: 'the proof key is not the one the token is bound to' }
    this.#jtis.add(payload.jti)
    if (nonce !== undefined && payload.nonce !== nonce) return { ok: false, reason: 'use_dpop_nonce' }
    return { ok: true, scheme: 'DPoP', jti: payload.jti, alg }
  }
}

export interface DpopUpstream {
  readonly url: string
  /** The verdict on every request, in order. */
  readonly verdicts: Verdict[]
  /** Every request as it arrived, for checks made again (negative controls). */
  readonly seen: ProofCheck[]
  /** `use_dpop_nonce` challenges sent. */
  readonly challenges: () => number
  /** Starts asking for a nonce (a new one each call), as a server rotating its nonces does. */
  rotateNonce(): string
  /**
   * Sends the next nonce with every 200 in `DPoP-Nonce` and asks for it
   * from then on (RFC 9449 §8.2 lets a server give a new nonce in any
   * answer), so a client that hears only its challenges is challenged on
   * every request.
   */
  nonceWithEveryAnswer(): void
  /**
   * Answers the next request whose proof holds with 401 `DPoP
   * error="invalid_token"`, as a server that no longer accepts the token;
   * with `rotateNonce`, it then asks for a nonce it has not sent yet.
   */
  refuseNextToken(options?: { readonly rotateNonce?: boolean }): void
  /** Asks every request for a nonce newer than the one it carries, as a server whose nonces expire at once. */
  challengeEveryRequest(): void
  /** `invalid_token` refusals sent. */
  readonly refusals: () => number
  close(): Promise<void>
}

/**
 * An upstream that answers 200 to a request whose proof holds, 401
 * `DPoP error="use_dpop_nonce"` with a `DPoP-Nonce` to one without its
 * current nonce (once `rotateNonce` has been called), and 401
 * `DPoP error="invalid_dpop_proof"` to any other.
 */
export async function startDpopUpstream(verifier: DpopVerifier): Promise<DpopUpstream> {
  const verdicts: Verdict[] = []
  const seen: ProofCheck[] = []
  let nonce: string | undefined
  let challenges = 0
  let nonceEveryAnswer = false
  let refuseNext: { readonly rotateNonce?: boolean } | undefined
  let refusals = 0
  let challengeAlways = false
  const newNonce = () => randomBytes(16).toString('base64url')
  const server = createServer(async (req, res) => {
    for await (const _ of req);
    const { port } = server.address() as AddressInfo
    const check = {
      method: req.method ?? '',
      url: `http://127.0.0.1:${port}${req.url}`,
      headers: req.headers,
    }
    seen.push(check)
    if (challengeAlways) nonce = newNonce()
    const verdict = await verifier.verify(check, nonce)
    verdicts.push(verdict)
    if (!verdict.ok && verdict.reason === 'use_dpop_nonce') {
      challenges++
      res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': nonce! }).end()
      return
    }
    if (!verdict.ok) {
      res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_dpop_proof"' }).end(verdict.reason)
      return
    }
    if (refuseNext !== undefined) {
      if (refuseNext.rotateNonce) nonce = newNonce()
      refuseNext = undefined
      refusals++
      res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_token"' }).end()
      return
    }
    if (nonceEveryAnswer) nonce = newNonce()
    res
      .writeHead(200, {
        'content-type': 'application/json',
        ...(nonceEveryAnswer ? { 'dpop-nonce': nonce! } : {}),
      })
      .end('{"ok":true}')
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    verdicts,
    seen,
    challenges: () => challenges,
    rotateNonce() {
      nonce = newNonce()
      return nonce
    },
    nonceWithEveryAnswer() {
      nonceEveryAnswer = true
    },
    refuseNextToken(options = {}) {
      refuseNext = options
    },
    challengeEveryRequest() {
      challengeAlways = true
    },
    refusals: () => refusals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
