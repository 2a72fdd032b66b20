import type { IncomingHttpHeaders } from 'node:http'
import * as oauth from 'oauth4webapi'
import type { DpopKey } from '../types.js'
import type { DpopProofs } from './proofs.js'

/**
 * Stands in for the network when oauth4webapi's `protectedResourceRequest`
 * makes a proof: the request itself goes out through the route's own undici
 * dispatch (src/proxy/forward.ts), so only its headers are kept.
 */
const NOT_SENT = { status: 204 } as const

/**
 * DPoP proofs for upstream requests (RFC 9449 §7): `Authorization: DPoP`
 * and a `DPoP` header with `htm`, `htu` (the URL as sent, without query or
 * fragment), `ath` (the token's hash), `iat`, a unique `jti` and the
 * upstream origin's latest nonce. oauth4webapi's resource-request path
 * makes them, so no proof is written here.
 */
export class UpstreamProofs {
  readonly #proofs: DpopProofs

  constructor(proofs: DpopProofs) {
    this.#proofs = proofs
  }

  /** The `DPoP` header for `method` on `url` with `accessToken`. */
  async proof(key: DpopKey, method: string, url: URL, accessToken: string): Promise<string> {
    const handle = await this.#proofs.handle(key)
    let proof: string | undefined
    await oauth.protectedResourceRequest(accessToken, method, url, undefined, undefined, {
      DPoP: handle,
      // The URL is the configured upstream's; plain http is `check`'s concern there.
      [oauth.allowInsecureRequests]: true,
      [oauth.customFetch]: async (_url, init) => {
        proof = (init.headers as Record<string, string>).dpop
        return new Response(null, NOT_SENT)
      },
    })
    return proof!
  }

  /** Remembers the nonce an upstream answer carries (RFC 9449 §9), for its origin. */
  remember(origin: string, headers: IncomingHttpHeaders): void {
    const nonce = headers['dpop-nonce']
    if (typeof nonce === 'string') this.#proofs.nonces.remember(origin, nonce)
  }
}

/**
 * RFC 9449 §9: the resource server asks for a nonce with a 401 whose
 * `WWW-Authenticate` is a DPoP challenge with `error="use_dpop_nonce"`,
 * and the nonce in `DPoP-Nonce`.
 */
export function asksForNonce(headers: IncomingHttpHeaders): boolean {
  const challenge = headers['www-authenticate']
  if (challenge === undefined || typeof headers['dpop-nonce'] !== 'string') return false
  const values = Array.isArray(challenge) ? challenge : [challenge]
  return values.some((v) => /\bdpop\b/i.test(v) && /\berror\s*=\s*"?use_dpop_nonce\b/i.test(v))
}
